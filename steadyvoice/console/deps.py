"""What the console keeps beside the API's services, and typed access to both for its pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from steadyvoice.console.sessions import SessionStore
from steadyvoice.security.ratelimit import FailedAuthLimit


@dataclass(frozen=True)
class Console:
    """Built once per app by :func:`steadyvoice.console.install`."""

    sessions: SessionStore
    failures: FailedAuthLimit  # sign-in's wrong keys count with the API's, per address


def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]
