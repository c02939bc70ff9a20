"""The few plain lines ``serve`` prints on a terminal once it listens: where, the key, what next."""

from __future__ import annotations

import shlex

from steadyvoice.settings import Settings

_ANY_HOST = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def api_url(settings: Settings) -> str:
    """The URL the API listens on, as configured (``0.0.0.0`` stays ``0.0.0.0``)."""
    return _url(settings.api.host, settings.api.port)


def local_url(settings: Settings) -> str:
    """A URL that reaches the API from this machine (loopback for a wildcard bind)."""
    host = settings.api.host
    return _url(_ANY_HOST.get(host, host), settings.api.port)


def banner(settings: Settings) -> str:
    """What a person at a terminal needs after ``steadyvoice serve``: the URL, where the admin
    key is, and a first request to try."""
    listen, local = api_url(settings), local_url(settings)
    where = listen if listen == local else f"{listen} (all interfaces; {local} from here)"
    key_file = settings.resolved_admin_key_file
    if key_file.exists():
        key_line = f"admin key  {key_file} (mode 0600; shown nowhere else)"
        key = f"$(cat {shlex.quote(str(key_file))})"
    else:
        key_line = (
            f"admin key  none in {key_file} (keys exist already, or the first-start key is off); "
            "make one with: steadyvoice keys create --role admin --tenant default"
        )
        key = "<your key>"
    body = '{"text": "Hello from steadyvoice.", "seed": 7}'
    try_line = (
        f'curl -s -XPOST {local}/v1/jobs -H "Authorization: Bearer {key}" '
        f"-H 'content-type: application/json' -d '{body}'"
    )
    return "\n".join(
        [
            "",
            f"  steadyvoice is listening on {where}",
            f"  {key_line}",
            f"  try        {try_line}",
            "  stop       Ctrl-C (running jobs finish first)",
            "",
        ]
    )
