"""A job's audio cap while its engine works: counted per piece, in every lane of the pieces
runner, and the pieces not yet begun once it is spent are never made."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from steadyvoice.cpus import CoreSlots
from steadyvoice.engines.base import FloatAudio
from steadyvoice.engines.budget import capped, check_made, spent
from steadyvoice.engines.pieces import PieceRunner
from steadyvoice.errors import AudioTooLong

RATE = 16_000


class _Made:
    """Pieces of one second of audio each, counted as they are made (from any thread)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, index: int) -> FloatAudio:
        with self._lock:
            self.count += 1
        return spent(np.zeros(RATE, np.float32), RATE)


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("whole", [False, True])
def test_pieces_stop_at_the_cap_in_every_lane(tmp_path: Path, lanes: int, whole: bool) -> None:
    made = _Made()
    runner = PieceRunner(lanes, CoreSlots(lanes, tmp_path))
    sizes = [1] * 40 if whole else None
    with capped(2.5), pytest.raises(AudioTooLong) as caught:
        list(runner.run(40, made, sizes))
    details = caught.value.details
    assert (details["limit"], details["estimated"]) == (2.5, False)
    assert 3.0 <= details["seconds"] <= made.count  # what was made when it was found over
    # The third piece passes the cap; the lanes already at work finish theirs, no more start.
    assert 3 <= made.count <= 2 + lanes


def test_without_a_cap_every_piece_is_made(tmp_path: Path) -> None:
    made = _Made()
    assert len(list(PieceRunner(2, CoreSlots(2, tmp_path)).run(40, made))) == 40
    assert made.count == 40
    with capped(None):
        check_made(1e9)  # no cap, nothing to refuse


def test_the_cap_is_the_jobs_own() -> None:
    """Caps nest like the jobs that run them, and end with their block."""
    with capped(1.0):
        spent(np.zeros(RATE // 2, np.float32), RATE)
        with capped(10.0):
            spent(np.zeros(RATE * 5, np.float32), RATE)
        with pytest.raises(AudioTooLong):
            spent(np.zeros(RATE, np.float32), RATE)
    spent(np.zeros(RATE * 100, np.float32), RATE)
