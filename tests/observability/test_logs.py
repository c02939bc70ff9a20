"""Log formats: JSON lines for services (never an ANSI code), readable text on a terminal."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from steadyvoice.observability.logs import configure_logging, event, job_context, resolve_format
from steadyvoice.settings import ConfigurationError, load_settings

# What uvicorn logs at start, with its ANSI-coloured copy of the message.
COLOR = "Uvicorn running on \x1b[1m%s://%s:%d\x1b[0m (Press CTRL+C to quit)"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """configure_logging replaces the root handlers; give pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in ("uvicorn.access", "alembic")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


def _uvicorn_start_line() -> None:
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
        "http",
        "127.0.0.1",
        7860,
        extra={"color_message": COLOR},
    )


def test_json_lines_carry_the_fields_and_never_an_ansi_code() -> None:
    out = io.StringIO()
    assert configure_logging("INFO", "api", "json", stream=out) == "json"
    _uvicorn_start_line()
    with job_context("job_1", "req_1"):
        event(logging.getLogger("steadyvoice.worker"), "job.started", attempt=1)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    start, started = lines
    assert start["message"] == "Uvicorn running on http://127.0.0.1:7860 (Press CTRL+C to quit)"
    assert start["level"] == "INFO" and start["logger"] == "uvicorn.error"
    assert start["component"] == "api" and "time" in start
    assert "color_message" not in start
    assert "\x1b" not in out.getvalue() and "\\u001b" not in out.getvalue()
    assert started["event"] == "job.started" and started["attempt"] == 1
    assert started["job_id"] == "job_1" and started["request_id"] == "req_1"


def test_text_lines_are_readable_one_liners_with_their_fields() -> None:
    out = io.StringIO()
    assert configure_logging("INFO", "worker", "text", stream=out) == "text"
    _uvicorn_start_line()
    with job_context("job_1"):
        event(logging.getLogger("steadyvoice.worker"), "job.started", attempt=1, voice="joe")
    logging.getLogger("steadyvoice.jobs").info("a note", extra={"reason": "two words"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    assert re.fullmatch(
        rf"{stamp} INFO uvicorn\.error Uvicorn running on http://127\.0\.0\.1:7860 "
        r"\(Press CTRL\+C to quit\)",
        lines[0],
    )
    assert re.fullmatch(
        rf"{stamp} INFO steadyvoice\.worker job\.started attempt=1 voice=joe job_id=job_1",
        lines[1],
    )
    assert lines[2].endswith('INFO steadyvoice.jobs a note reason="two words"')
    assert "\x1b" not in out.getvalue() and "color_message" not in out.getvalue()


def test_text_lines_show_a_traceback_below_the_line() -> None:
    out = io.StringIO()
    configure_logging("INFO", "api", "text", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("steadyvoice.x").exception("it failed")
    first, *rest = out.getvalue().splitlines()
    assert first.endswith("ERROR steadyvoice.x it failed")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: boom"


def test_event_takes_a_level() -> None:
    out = io.StringIO()
    configure_logging("INFO", "api", "json", stream=out)
    event(logging.getLogger("steadyvoice.supervisor"), "worker.exited", level=logging.WARNING)
    assert json.loads(out.getvalue())["level"] == "WARNING"


def test_auto_is_text_on_a_terminal_and_json_elsewhere(tmp_path: Path) -> None:
    master, replica = os.openpty()
    try:
        with open(replica, "w", closefd=False) as terminal:
            assert terminal.isatty()
            assert resolve_format("auto", terminal) == "text"
            assert resolve_format("json", terminal) == "json"
        with (tmp_path / "log").open("w") as file:
            assert resolve_format("auto", file) == "json"
            assert resolve_format("text", file) == "text"
        assert resolve_format("auto", io.StringIO()) == "json"
    finally:
        os.close(master)
        os.close(replica)


def test_log_format_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().log_format == "auto"
    monkeypatch.setenv("STEADYVOICE_LOG_FORMAT", "text")
    monkeypatch.setenv("STEADYVOICE_LOG_LEVEL", "DEBUG")  # the old variable still works
    settings = load_settings()
    assert settings.log_format == "text" and settings.log_level == "DEBUG"
    monkeypatch.setenv("STEADYVOICE_LOG_FORMAT", "pretty")
    with pytest.raises(ConfigurationError, match="log_format"):
        load_settings()
