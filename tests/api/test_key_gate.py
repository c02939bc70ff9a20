"""Key checks take turns per key: one key's burst leaves the lane open to every other key."""

from __future__ import annotations

import anyio
import pytest

from steadyvoice.api.key_gate import KeyGate


@pytest.mark.anyio
async def test_one_key_gets_at_most_its_share_and_another_key_is_not_held_up() -> None:
    gate = KeyGate(per_key=2)
    inside: dict[str, int] = {"a": 0, "b": 0}
    most = {"a": 0, "b": 0}
    release = anyio.Event()
    b_done = anyio.Event()

    async def holder(key: str) -> None:
        async with gate.turn(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            if key == "a":
                await release.wait()
            inside[key] -= 1
        if key == "b":
            b_done.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(holder, "a")
            await anyio.wait_all_tasks_blocked()
            assert inside["a"] == 2  # the other four wait, without a thread
            tg.start_soon(holder, "b")
            await b_done.wait()  # "b" went through while "a" held both its turns
            assert inside["a"] == 2
            release.set()
    assert most == {"a": 2, "b": 1}
    assert len(gate) == 0  # every key's gate is forgotten once its holders leave


@pytest.mark.anyio
async def test_a_cancelled_waiter_gives_nothing_away() -> None:
    gate = KeyGate(per_key=1)
    async with gate.turn("a"):
        with anyio.move_on_after(0.01):
            async with gate.turn("a"):
                pytest.fail("the second holder must wait")
        assert len(gate) == 1
    assert len(gate) == 0
    async with gate.turn("a"):  # the turn is free again
        pass


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
