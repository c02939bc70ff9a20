"""uvicorn's HTTP/1.1 protocol, with a deadline for the request head.

uvicorn times out only idle keep-alive connections, after a response. A client that connects
and sends nothing, or a header line now and then (slowloris), holds its connection for ever.
Here a connection must deliver a whole request head within ``header_timeout`` seconds of
connecting, or of its first byte after a response; otherwise it is closed without an answer
(nginx's ``client_header_timeout`` does the same in front of it).

Its 400 for bytes that are not HTTP carries the security headers too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from steadyvoice.api.headers import CSP, HEADERS


class HeadDeadlineProtocol(H11Protocol):
    """H11Protocol that closes connections whose request head does not arrive in time."""

    header_timeout: float = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_head():
            if self._head_timer is None:  # the first byte after a response: a new deadline
                self._arm()
        else:
            self._disarm()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP, with the security headers every
        answer carries (it is sent before, and without, the app)."""
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"connection", b"close"),
            *HEADERS,
            CSP,
        ]
        response = h11.Response(status_code=400, headers=headers, reason=b"Bad Request")
        self.transport.write(self.conn.send(response))
        self.transport.write(self.conn.send(h11.Data(data=msg.encode("ascii"))))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if self._awaiting_head():
            self.transport.close()


def head_deadline_protocol(seconds: float) -> type[HeadDeadlineProtocol]:
    """The protocol class with a deadline of ``seconds`` (uvicorn builds one per connection)."""

    class Protocol(HeadDeadlineProtocol):
        header_timeout = seconds

    return Protocol
