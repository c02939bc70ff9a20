"""``steadyvoice serve``: a second one on the same port or metrics dir fails before touching
anything, and on a terminal it prints a plain banner and text logs instead of JSON."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from processes import (  # type: ignore[import-not-found]
    Service,
    ServiceFactory,
    admin_key,
    free_port,
    poll,
)

from steadyvoice.serve import EXIT_IN_USE, CannotServe, bind_api, lock_metrics_dir

Env = Callable[..., dict[str, str]]


def _finished(svc: Service) -> float:
    text = svc.http.get("/metrics").text
    found = re.findall(
        r'^steadyvoice_jobs_finished_total\{[^}]*status="succeeded"[^}]*\} (\S+)$',
        text,
        re.MULTILINE,
    )
    return sum(float(n) for n in found)


def _second_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steadyvoice", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_second_serve_on_the_port_or_metrics_dir_fails_and_leaves_the_first_alone(
    start_service: ServiceFactory, service_env: Env
) -> None:
    env = service_env(engine="fake")
    svc = start_service(env)
    job = svc.wait_job(svc.submit("One finished job.")["id"])
    assert job["status"] == "succeeded"
    poll(lambda: _finished(svc) == 1, 30, "the finished job in /metrics")
    metrics_dir = Path(env["STEADYVOICE_METRICS_DIR"])
    files = sorted(p.name for p in metrics_dir.iterdir())

    same_port = {**env, "STEADYVOICE_API__PORT": svc.url.rsplit(":", 1)[1]}
    other_port = {**env, "STEADYVOICE_API__PORT": str(free_port())}
    for second, code in ((same_port, "port_in_use"), (other_port, "metrics_dir_in_use")):
        out = _second_serve(second)
        assert out.returncode == EXIT_IN_USE == 2, out
        [line] = out.stderr.splitlines()  # one line, no traceback
        assert line.startswith(f"steadyvoice: error: {code}: "), line
        assert out.stdout == ""

    assert sorted(p.name for p in metrics_dir.iterdir()) == files
    assert _finished(svc) == 1  # the first serve's metrics are intact
    assert svc.http.get("/readyz").status_code == 200


def test_a_service_logs_json_lines_without_colour_codes(
    start_service: ServiceFactory, service_env: Env
) -> None:
    svc = start_service(service_env(engine="fake"))
    log = svc.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    listening = [e for e in lines if e.get("event") == "api.listening"]
    assert [e["url"] for e in listening] == [svc.url]
    assert not any("color_message" in e for e in lines)
    assert "\x1b" not in log and "\\u001b" not in log
    assert "steadyvoice is listening" not in log  # no banner off a terminal


def test_on_a_terminal_serve_prints_a_banner_and_text_logs(
    service_env: Env, tmp_path: Path
) -> None:
    port = free_port()
    env = {**service_env(engine="fake"), "STEADYVOICE_API__PORT": str(port)}
    master, replica = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "steadyvoice", "serve"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=replica,
        stderr=replica,
    )
    os.close(replica)
    seen = bytearray()

    def read_until(needle: bytes) -> bool:
        if proc.poll() is not None and needle not in seen:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{seen.decode()}")
        while needle not in seen:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                return False
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process is gone
                return False
            seen.extend(chunk)
        return True

    try:
        poll(lambda: read_until(b"Ctrl-C"), 90, "the banner", every=0)
        poll(lambda: read_until(b"worker.ready"), 90, "a worker's text log line", every=0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        os.close(master)
    text = seen.decode()
    key_file = Path(env["STEADYVOICE_DATA_DIR"]) / "admin.key"
    assert f"steadyvoice is listening on http://127.0.0.1:{port}" in text
    assert f"admin key  {key_file}" in text
    assert f"curl -s -XPOST http://127.0.0.1:{port}/v1/jobs" in text
    key = admin_key(key_file.parent)
    assert key is not None and key not in text
    assert "\x1b" not in text
    assert not any(line.startswith("{") for line in text.splitlines())  # no JSON lines
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    assert re.search(rf"^{stamp} INFO steadyvoice\.worker worker\.ready ", text, re.MULTILINE)
    assert re.search(rf"^{stamp} INFO steadyvoice\.serve api\.listening url=http", text, re.M)


def test_bind_api_refuses_a_port_in_use_with_one_clear_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CannotServe, match=rf"^127\.0\.0\.1:{port} is already in use") as e:
            bind_api("127.0.0.1", port)
        assert e.value.code == "port_in_use"
    sockets = bind_api("127.0.0.1", port)  # free again
    assert [s.getsockname() for s in sockets] == [("127.0.0.1", port)]
    for sock in sockets:
        sock.close()
    with pytest.raises(CannotServe, match="does not resolve") as e:
        bind_api("no-such-host.invalid", port)
    assert e.value.code == "host_unresolved"
    with pytest.raises(CannotServe, match=r"cannot listen on 192\.0\.2\.1:") as e:
        bind_api("192.0.2.1", port)  # TEST-NET-1: an address no interface here has
    assert e.value.code == "cannot_listen"


def test_the_metrics_dir_lock_is_held_until_released(tmp_path: Path) -> None:
    lock = lock_metrics_dir(tmp_path / "metrics")
    assert (tmp_path / "metrics" / "serve.lock").read_text() == f"{os.getpid()}\n"
    # flock is per open file: a second open in this process is refused like another process.
    with pytest.raises(CannotServe, match=rf"pid {os.getpid()}\)"):
        lock_metrics_dir(tmp_path / "metrics")
    lock.close()
    lock_metrics_dir(tmp_path / "metrics").close()  # free once the holder lets go
