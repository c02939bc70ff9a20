"""CPU count for the ``auto`` settings, and core slots shared between processes on a host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from processes import poll  # type: ignore[import-not-found]

from steadyvoice.cpus import CoreSlots, available_cpus, cgroup_cpu_quota


def test_available_cpus_is_within_what_the_machine_has() -> None:
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
    assert available_cpus() <= len(os.sched_getaffinity(0))


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cgroup_cpu_quota(cpu_max, tmp_path / "none") == 1.5
    cpu_max.write_text("max 100000\n")
    assert cgroup_cpu_quota(cpu_max, tmp_path / "none") is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path / "absent", tmp_path) == 3.0
    (tmp_path / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path / "absent", tmp_path) is None


def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path / "a", tmp_path / "b") is None


def test_slots_are_shared_by_every_instance_on_the_same_directory(tmp_path: Path) -> None:
    one, two = CoreSlots(2, tmp_path / "cores"), CoreSlots(2, tmp_path / "cores")
    first, second = one.try_take(), two.try_take()
    assert first is not None and second is not None
    assert one.try_take() is None and two.try_take() is None
    first.release()
    again = two.try_take()
    assert again is not None
    again.release()
    second.release()
    second.release()  # twice is harmless


def test_demand_is_seen_by_other_instances_while_it_lasts(tmp_path: Path) -> None:
    one, two = CoreSlots(1, tmp_path), CoreSlots(1, tmp_path)
    assert not two.wanted()
    with one.demand(), one.demand():
        assert two.wanted()
    assert not two.wanted()


def test_a_killed_process_gives_its_core_back(tmp_path: Path) -> None:
    holder = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from steadyvoice.cpus import CoreSlots\n"
        "slot = CoreSlots(1, Path(sys.argv[1])).try_take()\n"
        "print('taken' if slot else 'none', flush=True)\n"
        "time.sleep(600)\n"
    )
    slots = CoreSlots(1, tmp_path)
    with subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "taken"
            assert slots.try_take() is None
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
    slot = poll(slots.try_take, 30, "the killed holder's core")
    slot.release()
