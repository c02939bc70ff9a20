"""A TCP proxy a harness controls, to cut a service off from its database (or anything else).

It forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` on an asyncio loop in a
background thread, so synchronous bench code drives it::

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/mydb"
        ...
        proxy.cut()        # abort every open connection (RST both ways); refuse new ones
        proxy.restore()    # listen again on the same port
        proxy.outage(3.0)  # cut, wait 3 s, restore
        proxy.stall()      # keep every connection open, forward nothing (a half-open link)

While cut, the port is closed: a new connection is refused (``ECONNREFUSED``), as from a
database server that is down. Open connections are aborted, not closed cleanly, so both ends
see a reset mid-conversation, as from a server crash or a network partition.

While stalled, nothing is forwarded and nothing is closed: what is sent is read and dropped, and
no answer ever comes, as from a peer that vanished without a reset or a hung middlebox. New
connections are accepted and stall too, until ``restore()``; connections that were open when the
stall began stay silent for good (the client must give up on them), until ``cut()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

BUFFER = 64 * 1024
T = TypeVar("T")


class TcpProxy:
    """Forwards one local port to one target; ``cut()`` and ``restore()`` break and mend it."""

    def __init__(
        self, target_host: str, target_port: int, listen_host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = port or _free_port(listen_host)
        self.connections = 0  # accepted since start
        self.cuts = 0
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._frozen: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._silent: set[asyncio.StreamWriter] = set()  # accepted while stalled
        self._stalled = False
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._thread.start()
        self.restore()

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def restore(self) -> None:
        """Listen (again) and forward new connections (stalled open ones stay silent)."""
        self._stalled = False
        self._call(self._listen())

    def stall(self) -> int:
        """Forward nothing more on the open connections, ever, and accept new ones without
        answering until ``restore()``; nothing is closed. Returns the connections stalled."""
        return self._call(self._stall())

    def cut(self) -> int:
        """Stop listening and abort every open connection; returns how many were cut."""
        self.cuts += 1
        return self._call(self._cut())

    def outage(self, seconds: float) -> int:
        """``cut()``, stay down ``seconds``, ``restore()``; returns the connections cut."""
        cut = self.cut()
        time.sleep(seconds)
        self.restore()
        return cut

    def close(self) -> None:
        """Cut everything and stop the loop thread."""
        if self._loop.is_closed():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- on the loop thread --------------------------------------------------------------

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, self.listen_host, self.port, reuse_address=True
            )

    async def _cut(self) -> int:
        if self._server is not None:
            self._server.close()
            self._server = None
        pairs = list(self._pairs)
        for client, upstream in pairs:
            client.transport.abort()
            upstream.transport.abort()
        for writer in self._silent:
            writer.transport.abort()
        self._pairs.clear()
        self._frozen.clear()
        self._silent.clear()
        return len(pairs)

    async def _stall(self) -> int:
        self._stalled = True
        self._frozen |= self._pairs
        return len(self._pairs)

    async def _shutdown(self) -> None:
        await self._cut()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._stalled:
            self._silent.add(writer)
            try:
                await _pipe(reader, None)
            finally:
                self._silent.discard(writer)
                writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            frozen = self._frozen
            await asyncio.gather(
                _pipe(reader, up_writer, lambda: pair in frozen),
                _pipe(up_reader, writer, lambda: pair in frozen),
            )
        finally:
            self._pairs.discard(pair)
            self._frozen.discard(pair)
            for w in pair:
                w.transport.abort()


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter | None,
    stalled: Callable[[], bool] = lambda: False,
) -> None:
    """Copy until EOF or an error, then half-close the other side. What arrives while
    ``stalled()`` (or with no ``writer``) is read and dropped."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(BUFFER):
            if writer is None or stalled():
                continue
            writer.write(data)
            await writer.drain()
        if writer is not None and not stalled() and writer.can_write_eof():
            writer.write_eof()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
