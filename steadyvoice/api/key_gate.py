"""Key checks take turns per key: one key's burst cannot fill the lane every caller needs.

48 downloads sent at once with one key put 48 key checks in the authentication lane, and
another tenant's ``GET /v1/me`` queued behind all of them (0.2 to 0.3 s). Here at most
``per_key`` checks of one ``Authorization`` value run at once; the others wait on the event
loop, without a thread, and the lane stays open to every other key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio


@dataclass
class _Gate:
    turns: anyio.Semaphore
    users: int = 0


class KeyGate:
    """Per ``Authorization`` value, at most ``per_key`` holders at once. Used on one event
    loop; a value's gate is forgotten when its last holder or waiter leaves."""

    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._gates: dict[str, _Gate] = {}

    @asynccontextmanager
    async def turn(self, header: str) -> AsyncIterator[None]:
        gate = self._gates.get(header)
        if gate is None:
            gate = self._gates[header] = _Gate(anyio.Semaphore(self._per_key))
        gate.users += 1
        try:
            async with gate.turns:
                yield
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._gates[header]

    def __len__(self) -> int:
        return len(self._gates)
