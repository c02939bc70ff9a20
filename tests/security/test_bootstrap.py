"""First start of a real ``steadyvoice serve``: the admin key file, the loopback bind."""

from __future__ import annotations

import errno
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from processes import ServiceFactory, run_cli  # type: ignore[import-not-found]

from steadyvoice.api.app import create_app
from steadyvoice.settings import Settings

ANNOUNCE = "created the first admin API key"
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def _secret(token: str) -> str:
    """The random part of a key (it may itself hold underscores)."""
    return token.split("_", 2)[2]


def _v1_calls(settings: Settings) -> list[tuple[str, str]]:
    """Every /v1 operation in the app's schema, with its path parameters filled in."""
    app = create_app(settings, run_reaper=False)
    try:
        paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    finally:
        app.state.services.jobs.close()
        app.state.services.store.engine.dispose()
    calls = []
    for template, item in paths.items():
        if not template.startswith("/v1/"):
            continue
        url = "/".join("x1" if p.startswith("{") else p for p in template.split("/"))
        calls += [(method.upper(), url) for method in item if method in HTTP_METHODS]
    return calls


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_writes_one_private_admin_key_and_says_where_once(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = service_env(data_dir=data, engine="fake")
    first = start_service(env, "--no-workers", ready=False)
    key_file = data / "admin.key"
    assert key_file.is_file() and _mode(key_file) == 0o600
    token = key_file.read_text().strip()
    assert token.startswith("sv_")

    me = first.http.get("/v1/me")  # the service client sends the key from the file
    assert me.status_code == 200, me.text
    body = me.json()
    assert (body["role"], body["tenant"]) == ("admin", "default")
    assert body["key_id"] == "key_" + token.split("_")[1]
    assert first.http.get("/v1/keys").json()["items"][0]["created_by"].startswith("bootstrap:")

    said = [line for line in first.log().splitlines() if ANNOUNCE in line]
    assert len(said) == 1 and str(key_file) in said[0], first.log()
    assert token not in first.log() and _secret(token) not in first.log()
    before = (key_file.read_bytes(), key_file.stat().st_mtime_ns, key_file.stat().st_ino)
    first.stop()

    second = start_service(env, "--no-workers", ready=False)
    assert ANNOUNCE not in second.log()
    assert (key_file.read_bytes(), key_file.stat().st_mtime_ns, key_file.stat().st_ino) == before
    assert list(data.glob(".admin.key*")) == []  # no temp file left behind
    keys = second.http.get("/v1/keys")
    assert keys.status_code == 200 and len(keys.json()["items"]) == 1
    assert second.http.get("/v1/me").json()["key_id"] == body["key_id"]


def test_without_bootstrap_no_key_is_made_and_every_v1_call_is_refused(
    start_service: ServiceFactory,
    service_env: Callable[..., dict[str, str]],
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = service_env(
        data_dir=data,
        engine="fake",
        security__bootstrap_admin_key="false",
        # Every route twice with no valid key, from one address: more than the default allows.
        security__failed_auth_per_minute="1000",
    )
    svc = start_service(env, "--no-workers", ready=False)
    assert not (data / "admin.key").exists()
    assert ANNOUNCE not in svc.log()
    calls = _v1_calls(settings_factory(data_dir=tmp_path / "schema"))
    assert len(calls) >= 10 and ("GET", "/v1/me") in calls
    fake = "sv_000000000000_" + "A" * 43
    for method, url in calls:
        bare = svc.http.request(method, url)
        assert bare.status_code == 401, (method, url, bare.text)
        assert bare.json()["error"]["code"] == "auth_required"
        guessed = svc.http.request(method, url, headers={"Authorization": f"Bearer {fake}"})
        assert guessed.status_code == 401, (method, url, guessed.text)
        assert guessed.json()["error"]["code"] == "invalid_key"

    # The way in then is the command line, on the same database.
    made = run_cli(["keys", "create", "--role", "admin", "--tenant", "default"], data)
    assert made.returncode == 0, made.stderr
    svc.use_key(made.stdout.strip())
    assert svc.http.get("/v1/me").json()["role"] == "admin"


def _listening(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, raw))
    return found


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError as exc:
        assert exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH), exc
        return False


def test_the_service_listens_on_loopback_only_unless_told_otherwise(
    start_service: ServiceFactory, service_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    # The socket table is read, not probed from outside: tests send traffic to loopback only.
    svc = start_service(service_env(engine="fake"), "--no-workers", ready=False)
    port = int(svc.url.rsplit(":", 1)[1])
    assert _listening(port) == {"127.0.0.1"}
    assert _connects("127.0.0.1", port)
    svc.stop()

    # Binding elsewhere is an explicit setting, and then the table shows it.
    env = service_env(data_dir=tmp_path / "open", engine="fake", api__host="0.0.0.0")
    wide = start_service(env, "--no-workers", ready=False)
    port = int(wide.url.rsplit(":", 1)[1])
    assert _listening(port) == {"0.0.0.0"}
    answer = httpx.get(f"http://127.0.0.1:{port}/v1/me", timeout=10, trust_env=False)
    assert answer.status_code == 401  # still closed without a key
