"""One POST to a callback, connected to the address the SSRF check approved (``urls.resolve``).

``http.client`` with its connection pointed at that address: the Host header (and, for
https, the SNI name and the certificate check) still name the URL's host, but no second DNS
lookup happens, so a rebinding answer cannot redirect the call. Redirects are not followed
(a 3xx is a failed attempt): following one would skip the checks.

``timeout`` bounds the whole attempt, not each socket operation: ``http.client``'s timeout
restarts with every read, so a receiver dribbling its headers a byte at a time would hold an
attempt for ever. A timer shuts the socket down at the deadline, which ends whatever read or
write is waiting, and the attempt fails as a ``TimeoutError``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from steadyvoice.webhooks.urls import Target

MAX_RESPONSE_BYTES = 4096  # the receiver's answer is read only this far (it is not used)


@dataclass(frozen=True)
class Response:
    status: int


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, address: str, deadline: float) -> None:
        super().__init__(target.host, target.port, timeout=_left(deadline))
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = _connected(self._address, self.port, self._deadline)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, address: str, deadline: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=_left(deadline), context=self._tls)
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        # On self.sock during the handshake too, so the deadline's timer can cut that short.
        self.sock = _connected(self._address, self.port, self._deadline)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the attempt's deadline passed")
    return left


def _connected(address: str, port: int, deadline: float) -> socket.socket:
    sock = socket.create_connection((address, port), _left(deadline))
    if time.monotonic() >= deadline:  # connected just as the timer found no socket to cut
        sock.close()
        raise TimeoutError("the attempt's deadline passed")
    return sock


def post(
    target: Target, address: str, body: bytes, headers: dict[str, str], timeout: float
) -> Response:
    """POST ``body`` to ``target`` at ``address`` within ``timeout`` seconds in all; raises
    ``TimeoutError`` past it, else ``OSError`` (refusals, TLS) or ``http.client.HTTPException``
    when no answer came back."""
    pinned = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    deadline = time.monotonic() + timeout
    conn = pinned(target, address, deadline)
    timer = threading.Timer(timeout, _cut, (conn,))  # fires at the deadline or later
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read(MAX_RESPONSE_BYTES)
        return Response(status=answer.status)
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline:  # cut by the timer (or timed out just as long)
            raise TimeoutError(f"no answer within {timeout:g} s") from exc
        raise
    finally:
        timer.cancel()
        conn.close()


def _cut(conn: http.client.HTTPConnection) -> None:
    """End the attempt: any read or write waiting on the socket returns at once."""
    sock = conn.sock
    if sock is None:  # still connecting: its own timeout (the same) ends it
        return
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)
