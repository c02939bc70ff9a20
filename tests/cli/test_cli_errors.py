"""Every command, given bad input, says so in one line with a documented exit status.

Never a traceback: ``steadyvoice: error: <code>: <message>`` (or ``steadyvoice: configuration
error: ...``) is the last line on stderr, after at most the line that names the database. Exit
statuses (docs/operations.md, "CLI exit codes"): 1 failed, 2 refused input or usage or
configuration, 3 no database, 141 stdout closed early.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import run_cli  # type: ignore[import-not-found]

from steadyvoice.cli import build_parser
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import Settings

FAILED, REFUSED, NO_DATABASE, BROKEN_PIPE = 1, 2, 3, 141

# (command, arguments, what the data dir holds, exit status, the error code on the last line)
CASES = [
    ("serve", ["serve", "--port", "70000"], "nothing", REFUSED, "configuration"),
    ("worker", ["worker"], "a file", REFUSED, "configuration"),
    ("synth", ["synth", "Hello.", "-o", "{tmp}/a.wav", "--speed", "10"], "nothing", REFUSED,
     "invalid_request"),
    ("synth", ["synth", "Hello.", "-o", "{tmp}/a.wav", "--voice", "bob"], "nothing", REFUSED,
     "unknown_voice"),
    ("synth", ["synth", "?!", "-o", "{tmp}/a.wav"], "nothing", REFUSED, "text_unspeakable"),
    ("synth", ["synth", "Hello.", "-o", "{tmp}/a.mp4"], "nothing", REFUSED, "unsupported_format"),
    ("synth", ["synth", "Hello.", "-o", "{tmp}/a", "--voice", "vp_0"], "nothing", REFUSED,
     "unsupported_format"),
    ("synth", ["synth", "Hello.", "-o", "{tmp}/a.wav", "--voice", "vp_0"], "nothing",
     NO_DATABASE, "no_database"),
    ("synth", ["synth", "Hello.", "-o", "{tmp}/a.wav", "--voice", "vp_0"], "a database",
     REFUSED, "unknown_voice"),
    ("synth", ["synth", "Hello.", "-o", "{tmp}/a.wav", "--seed", "x"], "nothing", REFUSED,
     "usage"),
    ("verify", ["verify"], "nothing", NO_DATABASE, "no_database"),
    ("voices add", ["voices", "add", "X", "{tmp}/none.wav", "--consent", "I agree to it all."],
     "nothing", REFUSED, "file_not_found"),
    ("voices add", ["voices", "add", "X", "{tmp}", "--consent", "I agree to it all."],
     "a database", REFUSED, "is_a_directory"),
    ("voices add", ["voices", "add", "X", "{tmp}/none.wav", "--consent", "I agree.",
                    "--tenant", "No Such"], "nothing", REFUSED, "invalid_request"),
    ("voices list", ["voices", "list"], "nothing", NO_DATABASE, "no_database"),
    ("voices reanalyse", ["voices", "reanalyse"], "nothing", NO_DATABASE, "no_database"),
    ("voices reanalyse", ["voices", "reanalyse", "vp_none"], "a database", FAILED,
     "voice_not_found"),
    ("voices rm", ["voices", "rm", "vp_none"], "nothing", NO_DATABASE, "no_database"),
    ("voices rm", ["voices", "rm", "vp_none"], "a database", REFUSED, "voice_not_found"),
    ("keys create", ["keys", "create", "--role", "root", "--tenant", "a"], "nothing", REFUSED,
     "invalid_request"),
    ("keys list", ["keys", "list"], "nothing", NO_DATABASE, "no_database"),
    ("keys list", ["keys", "list", "--tenant", "../etc"], "nothing", REFUSED, "invalid_request"),
    ("keys revoke", ["keys", "revoke", "key_000000000000"], "nothing", NO_DATABASE,
     "no_database"),
    ("keys revoke", ["keys", "revoke", "key_000000000000"], "a database", REFUSED,
     "key_not_found"),
    ("slo report", ["slo", "report"], "nothing", NO_DATABASE, "no_database"),
    ("slo report", ["slo", "report", "--window", "3w"], "nothing", REFUSED, "usage"),
    ("audit export", ["audit", "export", "--before", "2026-01-01", "--out", "{tmp}/a.jsonl",
                      "--key-file", "{tmp}/none.key"], "nothing", REFUSED, "invalid_request"),
    ("audit verify", ["audit", "verify", "--archive", "{tmp}/none.jsonl", "--key-file",
                      "{tmp}/none.key"], "nothing", REFUSED, "invalid_request"),
    ("audit rotate", ["audit", "rotate", "--before", "nope", "--archive", "{tmp}/a.jsonl",
                      "--key-file", "{tmp}/none.key"], "nothing", REFUSED, "usage"),
    ("backup create", ["backup", "create", "{tmp}/dest"], "nothing", NO_DATABASE, "no_database"),
    ("backup verify", ["backup", "verify", "{tmp}/none"], "nothing", REFUSED, "backup_not_found"),
    ("backup restore", ["backup", "restore", "{tmp}/none"], "nothing", REFUSED,
     "backup_not_found"),
    ("backup list", ["backup", "list", "ftp://x"], "nothing", REFUSED, "invalid_request"),
    ("retention purge", ["retention", "purge"], "nothing", NO_DATABASE, "no_database"),
    ("retention holds", ["retention", "holds"], "nothing", NO_DATABASE, "no_database"),
    ("retention hold", ["retention", "hold", "--job", "j_none", "--reason", "case 7"],
     "a database", REFUSED, "job_not_found"),
    ("retention hold", ["retention", "hold", "--tenant", "No Such", "--reason", "case 7"],
     "a database", REFUSED, "invalid_request"),
    ("retention release", ["retention", "release", "--job", "j_none"], "a database", REFUSED,
     "hold_not_found"),
    ("batch submit", ["batch", "submit", "{tmp}/none.csv"], "nothing", REFUSED,
     "file_not_found"),
    ("batch status", ["batch", "status", "b_none", "--server", "http://127.0.0.1:9"], "nothing",
     FAILED, "unreachable"),
    ("batch cancel", ["batch", "cancel", "b_none", "--server", "http://127.0.0.1:9"], "nothing",
     FAILED, "unreachable"),
    ("batch list", ["batch", "list", "--key-file", "{tmp}/none.key"], "nothing", REFUSED,
     "file_not_found"),
    ("workers", ["workers"], "nothing", NO_DATABASE, "no_database"),
    ("", [], "nothing", REFUSED, "usage"),
    ("", ["speak"], "nothing", REFUSED, "usage"),
]  # fmt: skip


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[str]:
    """Every runnable command in ``parser``: ``serve``, ``voices add``..."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield prefix.strip()
    for action in actions:
        for name, sub in action.choices.items():
            yield from _commands(sub, f"{prefix} {name}")


def test_every_command_has_a_bad_input_case() -> None:
    assert set(_commands(build_parser())) == {case[0] for case in CASES} - {""}


@pytest.fixture
def data_dir(tmp_path: Path, store_factory: Callable[[str], JobStore]) -> Callable[[str], Path]:
    def make(holds: str) -> Path:
        data = tmp_path / "data"
        if holds == "a file":
            data.write_text("not a directory")
        elif holds == "a database":
            data.mkdir()
            store_factory(Settings(data_dir=data).resolved_database_url)
        return data

    return make


@pytest.mark.parametrize(
    ("command", "args", "holds", "status", "code"),
    CASES,
    ids=[f"{' '.join(c[1][:3]) or 'none'}-{c[4]}-{c[2].split()[-1]}" for c in CASES],
)
def test_bad_input_is_one_line_and_a_documented_status(
    tmp_path: Path,
    data_dir: Callable[[str], Path],
    command: str,
    args: list[str],
    holds: str,
    status: int,
    code: str,
) -> None:
    data = data_dir(holds)
    out = run_cli([a.format(tmp=tmp_path) for a in args], data, STEADYVOICE_ENGINE="fake")
    assert out.returncode == status, out
    assert "Traceback" not in out.stderr and out.stdout == ""
    *notes, said = out.stderr.splitlines()
    assert all(n.startswith("steadyvoice: using ") for n in notes), out.stderr
    if code == "configuration":
        assert said.startswith("steadyvoice: configuration error: "), said
    else:
        assert said.startswith(f"steadyvoice: error: {code}: "), said
    if holds == "nothing":  # nothing made where the settings point
        assert not data.exists()


def test_no_database_names_the_file_and_the_setting(tmp_path: Path) -> None:
    out = run_cli(["keys", "list"], tmp_path / "data")
    path = (tmp_path / "data" / "steadyvoice.db").resolve()
    assert out.stderr.splitlines() == [
        f"steadyvoice: using database sqlite:///{path}",
        f"steadyvoice: error: no_database: no database at {path}; set STEADYVOICE_DATA_DIR "
        "(or STEADYVOICE_DATABASE_URL) to the service's data directory",
    ]


def _closed_stdout(args: list[str], data: Path) -> tuple[int, str]:
    """Run a command whose reader is gone before it writes (``| head`` done reading)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    env["STEADYVOICE_DATA_DIR"] = str(data)
    with subprocess.Popen(
        [sys.executable, "-m", "steadyvoice", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        said = proc.stderr.read()
        return proc.wait(timeout=60), said


@pytest.mark.parametrize("args", [["slo", "report"], ["keys", "list", "--json"]])
def test_a_closed_pipe_ends_quietly_with_141(
    data_dir: Callable[[str], Path], args: list[str]
) -> None:
    status, said = _closed_stdout(args, data_dir("a database"))
    assert status == BROKEN_PIPE, said
    assert "Traceback" not in said and "BrokenPipeError" not in said
    assert [line.split(" ", 2)[:2] for line in said.splitlines()] == [["steadyvoice:", "using"]]
