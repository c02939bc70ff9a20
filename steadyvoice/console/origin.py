"""Which site a console form came from: the browser's ``Origin`` against this service's own.

Compared as (scheme, host, port), with the scheme's default port filled in, so
``https://tts.example`` and ``https://tts.example:443`` are one origin and
``https://tts.example:8443`` is another. This service's own origin is the request's scheme
(``X-Forwarded-Proto`` behind a trusted proxy) and ``Host`` header, unless the setting
``console.public_origin`` names it: then that is the only one accepted, whatever ``Host``
a proxy passes on.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` as (scheme, host, port); None for anything else (a path, a
    user, an unknown scheme, a bad port)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in DEFAULT_PORTS
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def own_origin(scheme: str, host: str, public_origin: str | None) -> Origin | None:
    """This service's origin: ``public_origin`` if set, else ``scheme`` and the Host header."""
    if public_origin:
        return parse_origin(public_origin)
    if not host or any(c in host for c in "/?#@\\"):
        return None
    return parse_origin(f"{scheme}://{host}")


def same_origin(given: str, scheme: str, host: str, public_origin: str | None) -> bool:
    """Whether the browser's ``Origin`` header names this service."""
    mine = own_origin(scheme, host, public_origin)
    return mine is not None and parse_origin(given) == mine
