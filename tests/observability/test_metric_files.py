"""Compacting the multiprocess metrics dir: dead processes' files fold into archives, and every
total a scrape reports stays exactly what it was."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from processes import Service, ServiceFactory, poll  # type: ignore[import-not-found]
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from steadyvoice.observability import metric_files

pytestmark = pytest.mark.timeout(240)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
GOOD = {"status": "succeeded", "error_code": "", "outcome": "good"}

WRITER = textwrap.dedent(
    """
    import os, sys
    from prometheus_client import Counter, Gauge, Histogram
    n = int(sys.argv[1])
    jobs = Counter("t_jobs", "Jobs.", ["kind"])
    seconds = Histogram("t_seconds", "Seconds.", ["size"], buckets=(0.1, 1.0, 10.0))
    memory = Gauge("t_memory", "Memory.", multiprocess_mode="liveall")
    restarts = Counter("t_restarts", "Unlabelled.")
    for i in range(n):
        jobs.labels(kind="a" if i % 2 else "b").inc()
        seconds.labels(size="short").observe(0.05 * (i + 1) + 0.013)
    jobs.labels(kind="only_in_%d" % n).inc(0.5)
    restarts.inc(n)
    memory.set(1000 + n)
    print(os.getpid())
    """
)


def _write(path: Path, n: int) -> int:
    """Run a process that counts ``n`` things into ``path`` and exits; its pid."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(n)], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def _collect(path: Path) -> Samples:
    registry = CollectorRegistry()
    registry.register(metric_files.SharedFilesCollector(path))
    out: Samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _without_gauges(samples: Samples) -> Samples:
    return {k: v for k, v in samples.items() if not k[0].startswith("t_memory")}


def _db_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob("*.db"))


def _assert_same(after: Samples, before: Samples) -> None:
    assert set(after) == set(before)
    for key, value in before.items():
        assert after[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_dead_processes_fold_into_archives_with_totals_unchanged(tmp_path: Path) -> None:
    first, second = _write(tmp_path, 3), _write(tmp_path, 4)
    assert len(_db_files(tmp_path)) == 6  # counter, histogram, live gauge: per process
    before = _collect(tmp_path)
    assert before[("t_jobs_total", frozenset({("kind", "a")}))] == 3
    assert before[("t_seconds_count", frozenset({("size", "short")}))] == 7

    done = metric_files.compact(tmp_path, [first, second])

    assert done.pids == sorted([first, second]) and done.skipped == []
    assert done.removed == 6
    assert _db_files(tmp_path) == ["counter_archive.db", "histogram_archive.db"]
    after = _collect(tmp_path)
    # Counters and histograms are unchanged; the dead processes' live gauges are gone.
    _assert_same(after, _without_gauges(before))

    # A third death folds into the same archives: the file count stays put.
    third = _write(tmp_path, 5)
    before = _collect(tmp_path)
    metric_files.compact(tmp_path, [third])
    assert _db_files(tmp_path) == ["counter_archive.db", "histogram_archive.db"]
    after = _collect(tmp_path)
    _assert_same(after, _without_gauges(before))
    assert after[("t_restarts_total", frozenset())] == 3 + 4 + 5
    assert after[("t_seconds_count", frozenset({("size", "short")}))] == 12
    assert after[("t_seconds_bucket", frozenset({("size", "short"), ("le", "+Inf")}))] == 12


def test_a_live_pid_is_never_compacted(tmp_path: Path) -> None:
    """A pid still in use (reused by a new process) keeps its files: it may be writing them."""
    dead = _write(tmp_path, 2)
    live = _write(tmp_path, 1)
    (tmp_path / f"counter_{live}.db").rename(tmp_path / f"counter_{os.getpid()}.db")
    done = metric_files.compact(tmp_path, [dead, os.getpid()])
    assert done.pids == [dead] and done.skipped == [os.getpid()]
    assert f"counter_{os.getpid()}.db" in _db_files(tmp_path)
    assert f"counter_{dead}.db" not in _db_files(tmp_path)


def test_a_scrape_waits_for_a_compaction_in_progress(tmp_path: Path) -> None:
    pid = _write(tmp_path, 2)
    before = _collect(tmp_path)
    seen: list[Samples] = []
    with metric_files._locked(tmp_path, fcntl.LOCK_EX):
        scrape = threading.Thread(target=lambda: seen.append(_collect(tmp_path)))
        scrape.start()
        scrape.join(timeout=0.5)
        assert scrape.is_alive(), "the scrape read the dir during a compaction"
        # What the compaction does while it holds the lock (it would deadlock on itself).
        for typ in metric_files.CUMULATIVE_TYPES:
            metric_files._fold(tmp_path, typ, [pid])
    scrape.join(timeout=30)
    assert not scrape.is_alive()
    _assert_same(_without_gauges(seen[0]), _without_gauges(before))


def test_a_scrape_skips_a_file_a_starting_process_has_not_sized_yet(tmp_path: Path) -> None:
    _write(tmp_path, 2)
    before = _collect(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / f"counter_{gone.pid}.db").touch()  # opened, not yet truncated to its mmap size
    assert _collect(tmp_path) == before
    # A process that died right there left an empty file: compaction just deletes it.
    metric_files.compact(tmp_path, [gone.pid])
    assert f"counter_{gone.pid}.db" not in _db_files(tmp_path)
    assert _collect(tmp_path) == before


def test_nothing_to_compact_changes_nothing(tmp_path: Path) -> None:
    done = metric_files.compact(tmp_path, [])
    assert done == metric_files.Compacted(pids=[], removed=0, skipped=[])
    assert _db_files(tmp_path) == []


# --- a real `steadyvoice serve` whose worker is recycled after every job --------------------


def test_recycled_workers_leave_a_bounded_dir_and_exact_totals(
    tmp_path: Path, start_service: ServiceFactory, service_env: Callable[..., dict[str, str]]
) -> None:
    env = service_env(engine="fake", worker__max_jobs="1")
    metrics_dir = Path(env["STEADYVOICE_METRICS_DIR"])
    service: Service = start_service(env)
    assert service.proc is not None
    api_pid = service.proc.pid
    n = 5
    for i in range(n):
        job = service.submit(f"Job number {i}.")
        assert service.wait_job(job["id"])["status"] == "succeeded"

    def scraped() -> Samples:
        r = service.http.get("/metrics")
        assert r.status_code == 200, r.text
        out: Samples = {}
        for family in text_string_to_metric_families(r.text):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def pids() -> set[int]:
        return {
            int(m)
            for name in _db_files(metrics_dir)
            if (m := name[:-3].rsplit("_", 1)[1]).isdigit()
        }

    def settled() -> Samples | None:
        s = scraped()
        good = s.get(("steadyvoice_jobs_finished_total", frozenset(GOOD.items())), 0.0)
        # The API process and at most the one live worker: every recycled one was compacted.
        return s if good == n and len(pids() - {api_pid}) <= 1 else None

    s = poll(settled, 60, f"recycled workers compacted; files {_db_files(metrics_dir)}")
    assert "counter_archive.db" in _db_files(metrics_dir)
    assert "histogram_archive.db" in _db_files(metrics_dir)
    assert len(_db_files(metrics_dir)) <= 10, _db_files(metrics_dir)
    short = frozenset({("size", "short")})
    assert s[("steadyvoice_job_end_to_end_seconds_count", short)] == n
    assert s[("steadyvoice_job_queue_wait_seconds_count", frozenset())] == n
    assert s.get(("steadyvoice_worker_restarts_total", frozenset()), 0.0) == 0
    memory = [dict(k[1]) for k in s if k[0] == "steadyvoice_process_resident_memory_bytes"]
    assert len([m for m in memory if m["component"] == "worker"]) <= 1
