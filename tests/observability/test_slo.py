"""The SLO report on a crafted job history: exact counts, percentiles, budgets and incidents."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from processes import run_cli  # type: ignore[import-not-found]

from steadyvoice.jobs.models import Job
from steadyvoice.jobs.store import JobStore
from steadyvoice.observability.models import Incident, Refusal
from steadyvoice.observability.slo import build_report
from steadyvoice.observability.slo_models import SloReport
from steadyvoice.observability.slo_stats import nearest_rank, parse_window
from steadyvoice.settings import Settings, SloSettings

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=3)  # 2025-03-07 12:00 .. 2025-03-10 12:00
SHORT = "x" * 200  # exactly latency_max_chars: short
LONG = "x" * 201


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


def job(
    created: datetime,
    status: str,
    *,
    e2e: float | None = None,
    wait: float | None = None,
    deadline: float = 600.0,
    code: str | None = None,
    text: str = SHORT,
) -> Job:
    """A job row as the service would have left it."""
    job_id = uuid.uuid4().hex
    return Job(
        id=job_id,
        status=status,
        text=text,
        voice="alpha",
        engine="fake",
        engine_version="fake-1",
        params={"seed": 42, "speed": 1.0, "format": "wav"},
        requester="anonymous",
        request_hash="0" * 64,
        created_at=created,
        started_at=None if wait is None else created + timedelta(seconds=wait),
        finished_at=None if e2e is None else created + timedelta(seconds=e2e),
        deadline_at=created + timedelta(seconds=deadline),
        attempts=0 if wait is None else 1,
        error_code=code,
        output_name=f"{job_id}.wav",
    )


def incident(started: datetime, ended: datetime | None, reason: str) -> Incident:
    return Incident(
        id=uuid.uuid4().hex, reason=reason, started_at=started, ended_at=ended, detected_by="test"
    )


def history() -> list[Any]:
    """The crafted history; the expected numbers in the tests are worked out from it."""
    rows: list[Any] = [
        job(at(7, 11), "succeeded", e2e=1, wait=0.5),  # before the window: ignored
        # 03-07: only failures: 2 ours, 3 the client's, 2 canceled.
        job(at(7, 13), "failed", e2e=3, wait=2.6, code="engine_error"),
        job(at(7, 14), "failed", e2e=3, wait=2.7, code="engine_error"),
        job(at(7, 15), "failed", e2e=3, wait=2.9, code="text_unspeakable"),
        job(at(7, 16), "failed", e2e=3.5, wait=3.0, code="text_unspeakable"),
        job(at(7, 17), "failed", e2e=3.5, wait=3.1, code="voice_deleted"),
        job(at(7, 18), "canceled", e2e=1),
        job(at(7, 19), "canceled", e2e=1, wait=None),
    ]
    # 100 fast short jobs: end-to-end 0.04 s .. 4.00 s, queue wait 0.01 s .. 1.00 s;
    # 1..50 on 03-08, 51..100 on 03-09.
    for i in range(1, 101):
        created = at(8 if i <= 50 else 9, 0) + timedelta(minutes=i)
        rows.append(job(created, "succeeded", e2e=0.04 * i, wait=round(0.01 * i, 2)))
    rows += [
        # 03-09: two slow short jobs (good for availability, bad for the latency SLO) ...
        job(at(9, 3), "succeeded", e2e=6, wait=2.1),
        job(at(9, 4), "succeeded", e2e=8, wait=2.2),
        # ... three long ones (not in the latency SLO) ...
        job(at(9, 5), "succeeded", e2e=12, wait=2.3, text=LONG),
        job(at(9, 6), "succeeded", e2e=20, wait=2.4, text=LONG),
        job(at(9, 7), "succeeded", e2e=30, wait=2.5, text=LONG),
        # ... one success after its deadline, one expired in the queue, one lost worker.
        job(at(9, 8), "succeeded", e2e=15, wait=9, deadline=10, text=LONG),
        job(at(9, 9), "failed", e2e=600, code="timeout"),
        job(at(9, 10), "failed", e2e=40, wait=2.8, code="worker_lost"),
        # 03-10: one still queued past its deadline (bad), one running inside it (in flight).
        job(at(10, 11), "queued"),
        job(at(10, 11, 59), "running", wait=10),
        # refusals (rows aggregate `count`): 3 before the window, 1 + 4 + 1 inside, 2 at `now`
        # (the end is open).
        Refusal(at=at(7, 11), reason="queue_full", count=3, chars=30),
        Refusal(at=at(8, 1), reason="queue_full", count=1, chars=10),
        Refusal(at=at(8, 2), reason="queue_full", count=4, chars=40),
        Refusal(at=at(10, 1), reason="deadline", count=1, chars=10),
        Refusal(at=NOW, reason="deadline", count=2, chars=20),
        # incidents: one over before the window, three closed, one still open.
        incident(at(7, 10), at(7, 11), "worker_crash"),
        incident(at(7, 11, 50), at(7, 12, 10), "database_unreachable"),  # 1200 s
        incident(at(8, 9), at(8, 9, 0, 30), "worker_crash"),  # 30 s
        incident(at(9, 15), at(9, 15, 3), "process_restart"),  # 180 s
        incident(at(10, 11, 55), None, "database_unreachable"),  # open, 300 s so far
    ]
    return rows


@pytest.fixture
def report(store: JobStore) -> SloReport:
    with store.session() as s:
        s.add_all(history())
    return build_report(store, SloSettings(), WINDOW, NOW)


def test_counts_split_good_bad_client_errors_canceled_and_in_flight(report: SloReport) -> None:
    assert report.window_start == at(7, 12) and report.window_end == NOW
    assert report.window_seconds == 3 * 86400
    j = report.jobs
    assert (j.good, j.bad, j.client_errors, j.canceled, j.in_flight) == (105, 6, 3, 2, 1)
    assert j.accepted == 116 == j.good + j.bad + j.client_errors + j.canceled
    assert j.bad_by_code == {
        "engine_error": 2,
        "late": 1,
        "overdue": 1,
        "timeout": 1,
        "worker_lost": 1,
    }
    assert j.client_errors_by_code == {"text_unspeakable": 2, "voice_deleted": 1}
    assert report.refused.total == 6  # the sum of `count`, not the number of rows
    assert report.refused.by_reason == {"deadline": 1, "queue_full": 5}


def test_availability_and_its_budget(report: SloReport) -> None:
    # Client errors, cancellations, the in-flight job and refusals are all left out.
    assert report.availability == pytest.approx(105 / 111)
    a = report.objectives.availability
    assert (a.target, a.eligible, a.good, a.bad, a.met) == (0.999, 111, 105, 6, False)
    assert a.budget.allowed == pytest.approx(0.111)
    assert a.budget.consumed == 6
    assert a.budget.remaining == pytest.approx(0.111 - 6)
    assert a.budget.remaining_fraction == pytest.approx((0.111 - 6) / 0.111)


def test_latency_slo_counts_short_succeeded_jobs_only(report: SloReport) -> None:
    # 102 short succeeded jobs (100 fast + 2 slow, the 200-char boundary is short);
    # the long ones and the late long one are not eligible.
    lat = report.objectives.latency
    assert (lat.target, lat.eligible, lat.good, lat.bad, lat.met) == (0.99, 102, 100, 2, False)
    assert lat.attained == pytest.approx(100 / 102)
    assert lat.budget.allowed == pytest.approx(1.02)
    assert lat.budget.remaining_fraction == pytest.approx((1.02 - 2) / 1.02)
    assert report.targets.latency_seconds == 5.0 and report.targets.latency_max_chars == 200


def test_nearest_rank_percentiles(report: SloReport) -> None:
    e2e = report.latency.e2e  # 106: 0.04..4.00, 6, 8, 12, 15 (late), 20, 30
    assert (e2e.count, e2e.p50, e2e.p95, e2e.p99, e2e.max) == (106, 2.12, 6.0, 20.0, 30.0)
    short = report.latency.e2e_short  # 102: 0.04..4.00, 6, 8
    assert (short.count, short.p50, short.p95, short.p99, short.max) == (102, 2.04, 3.88, 6, 8)
    wait = report.latency.queue_wait  # 112: 0.01..1.00, 2.1..3.1 (no 2.0), 9
    assert (wait.count, wait.p50, wait.p95, wait.p99, wait.max) == (112, 0.56, 2.7, 3.1, 9.0)


def test_incidents_and_recovery_times(report: SloReport) -> None:
    listed = [(i.reason, i.duration_seconds, i.open) for i in report.incidents]
    assert listed == [
        ("database_unreachable", 1200.0, False),
        ("worker_crash", 30.0, False),
        ("process_restart", 180.0, False),
        ("database_unreachable", 300.0, True),
    ]
    assert report.incidents[-1].ended_at is None
    rec = report.recovery
    assert (rec.incidents, rec.closed, rec.open) == (4, 3, 1)
    assert (rec.median_seconds, rec.max_seconds) == (180.0, 1200.0)


def test_per_day_rows(report: SloReport) -> None:
    rows = [
        (d.date, d.accepted, d.in_flight, d.good, d.bad, d.client_errors, d.canceled, d.refused)
        for d in report.days
    ]
    assert rows == [
        (date(2025, 3, 7), 7, 0, 0, 2, 3, 2, 0),
        (date(2025, 3, 8), 50, 0, 50, 0, 0, 0, 5),
        (date(2025, 3, 9), 58, 0, 55, 3, 0, 0, 0),
        (date(2025, 3, 10), 1, 1, 0, 1, 0, 0, 1),
    ]
    assert [d.availability for d in report.days] == [0.0, 1.0, pytest.approx(55 / 58), 0.0]
    assert [d.p99_e2e_seconds for d in report.days] == [None, 2.0, 30.0, None]


def test_empty_window_has_no_ratios(store: JobStore) -> None:
    empty = build_report(store, SloSettings(), timedelta(hours=12), NOW)
    assert empty.availability is None and empty.objectives.availability.met is None
    assert empty.objectives.availability.budget.remaining_fraction is None
    assert empty.latency.e2e.p99 is None and empty.recovery.median_seconds is None
    assert [d.date for d in empty.days] == [date(2025, 3, 10)]


def test_a_met_objective_keeps_budget() -> None:
    from steadyvoice.observability.slo_stats import objective

    o = objective(0.999, 1999, 1)
    assert o.met is True and o.attained == 0.9995
    assert (o.budget.allowed, o.budget.remaining, o.budget.remaining_fraction) == (2.0, 1.0, 0.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90))],
)
def test_parse_window(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "30", "0d", "367d", "1w", "-1d", "1.5h", "30 days"])
def test_parse_window_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_window(text)


def test_nearest_rank_definition() -> None:
    values = [float(v) for v in range(1, 11)]
    assert [nearest_rank(values, p) for p in (10, 50, 95, 99, 100)] == [1, 5, 10, 10, 10]
    assert nearest_rank([], 50) is None


# --- the command line and the API -------------------------------------------------------------


def _recent_history(store: JobStore) -> None:
    """Two good jobs, one bad, one client error and one refusal, all within the last hour."""
    now = datetime.now(UTC)
    with store.session() as s:
        s.add_all(
            [
                job(now - timedelta(minutes=30), "succeeded", e2e=1, wait=0.5),
                job(now - timedelta(minutes=20), "succeeded", e2e=2, wait=0.5, text=LONG),
                job(now - timedelta(minutes=10), "failed", e2e=3, wait=1, code="engine_error"),
                job(now - timedelta(minutes=5), "failed", e2e=1, wait=1, code="text_empty"),
                Refusal(at=now - timedelta(minutes=1), reason="queue_full", count=1, chars=5),
            ]
        )


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(args, tmp_path / "data")


@pytest.fixture
def cli_store(tmp_path: Path, store_factory: Callable[[str], JobStore]) -> JobStore:
    settings = Settings(data_dir=tmp_path / "data", engine="fake")
    (tmp_path / "data").mkdir()
    store = store_factory(settings.resolved_database_url)
    _recent_history(store)
    return store


@pytest.mark.usefixtures("cli_store")
def test_cli_json_report(tmp_path: Path) -> None:
    out = _run(["slo", "report", "--window", "90m", "--json"], tmp_path)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["jobs"]["accepted"] == 4 and body["jobs"]["good"] == 2
    assert body["jobs"]["client_errors_by_code"] == {"text_empty": 1}
    assert body["refused"] == {"total": 1, "by_reason": {"queue_full": 1}}
    assert body["availability"] == pytest.approx(2 / 3)
    assert body["latency"]["e2e"]["max"] == 2.0
    assert body["objectives"]["latency"]["eligible"] == 1
    assert sum(d["accepted"] for d in body["days"]) == 4
    assert set(body) == set(SloReport.model_fields)


@pytest.mark.usefixtures("cli_store")
def test_cli_table_report(tmp_path: Path) -> None:
    out = _run(["slo", "report"], tmp_path)  # default window: 30 days
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "availability 66.667%" in text
    for heading in ("objective", "latency (seconds, nearest rank)", "per day (UTC)", "incidents"):
        assert heading in text
    assert "engine_error" in text and "queue_full" in text
    assert "day         accepted  good  bad  client  refused  availability  p99 e2e" in text


def test_cli_bad_window_is_a_usage_error(tmp_path: Path) -> None:
    out = _run(["slo", "report", "--window", "3w"], tmp_path)
    assert out.returncode == 2
    assert "window must be" in out.stderr and "Traceback" not in out.stderr


def test_api_report(client: TestClient) -> None:
    _recent_history(client.app.state.services.store)  # type: ignore[attr-defined]
    r = client.get("/v1/slo", params={"window": "12h"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["jobs"]["bad_by_code"] == {"engine_error": 1}
    assert body["objectives"]["availability"]["eligible"] == 3
    assert body["window_seconds"] == 12 * 3600
    default = client.get("/v1/slo").json()
    assert default["window_seconds"] == 30 * 86400 and len(default["days"]) == 31


@pytest.mark.parametrize("window", ["0d", "400d", "soon", "1" * 40])
def test_api_bad_window_is_422(client: TestClient, window: str) -> None:
    r = client.get("/v1/slo", params={"window": window})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert "window" in json.dumps(error)
