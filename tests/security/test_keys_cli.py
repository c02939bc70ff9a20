"""``steadyvoice keys create | list | revoke`` as an operator runs them, on both databases."""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from http_checks import error_of  # type: ignore[import-not-found]
from processes import run_cli  # type: ignore[import-not-found]
from speech import reference_wav  # type: ignore[import-not-found]

TOKEN = re.compile(r"^sv_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
ME = f"cli:{getpass.getuser()}"


def _secret(token: str) -> str:
    """The random part of a key (it may itself hold underscores)."""
    return token.split("_", 2)[2]


Cli = Callable[..., subprocess.CompletedProcess[str]]


def _cli_on(data_dir: Path, **env: str) -> Cli:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        out: subprocess.CompletedProcess[str] = run_cli(list(args), data_dir, **env)
        return out

    return run


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    """Run ``steadyvoice ARGS`` on the test's data dir and database (both kinds)."""
    return _cli_on(tmp_path / "data", STEADYVOICE_DATABASE_URL=db_url)


@pytest.fixture
def default_cli(tmp_path: Path) -> Cli:
    """Run ``steadyvoice ARGS`` with the default database (SQLite in the data dir)."""
    return _cli_on(tmp_path / "data")


def _create(cli: Cli, *args: str) -> str:
    out = cli("keys", "create", *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _listed(cli: Cli, *args: str) -> Any:
    out = cli("keys", "list", "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_create_prints_the_key_alone_on_stdout(
    cli: Cli,
) -> None:
    out = cli("keys", "create", "--role", "operator", "--tenant", "acme", "--name", "ci robot")
    assert out.returncode == 0, out.stderr
    token = out.stdout.removesuffix("\n")
    assert out.stdout == token + "\n" and "\n" not in token
    found = TOKEN.fullmatch(token)
    assert found, out.stdout
    key_id, prefix = f"key_{found[1]}", f"sv_{found[1]}"
    for shown in (key_id, prefix, "operator", "acme"):
        assert shown in out.stderr
    assert token not in out.stderr and _secret(token) not in out.stderr

    [listed] = _listed(cli)
    assert listed["id"] == key_id and listed["prefix"] == prefix
    assert (listed["role"], listed["tenant"], listed["name"]) == ("operator", "acme", "ci robot")
    assert listed["status"] == "active" and listed["created_by"] == ME
    assert listed["rate_per_minute"] is None and listed["max_in_flight"] is None


def test_list_never_shows_a_secret_and_filters(
    cli: Cli,
) -> None:
    tokens = [
        _create(cli, "--role", "admin", "--tenant", "default"),
        _create(cli, "--role", "viewer", "--tenant", "acme", "--rate-per-minute", "30"),
        _create(cli, "--role", "operator", "--tenant", "beta", "--max-in-flight", "2"),
    ]
    ids = ["key_" + t.split("_")[1] for t in tokens]
    text = cli("keys", "list")
    every = cli("keys", "list", "--all", "--json")
    for shown in (text.stdout, every.stdout):
        for token in tokens:
            assert token not in shown and _secret(token) not in shown
            assert hashlib.sha256(token.encode()).hexdigest() not in shown
    assert "secret" not in every.stdout
    for key_id in ids:
        assert key_id in text.stdout
    assert len(text.stdout.splitlines()) == 3

    assert [k["id"] for k in _listed(cli)] == ids[::-1]  # newest first
    [acme] = _listed(cli, "--tenant", "acme")
    assert (acme["id"], acme["rate_per_minute"], acme["max_in_flight"]) == (ids[1], 30, None)
    assert _listed(cli, "--tenant", "beta")[0]["max_in_flight"] == 2
    assert _listed(cli, "--tenant", "nobody") == []


def test_revoke_and_revoke_again(cli: Cli) -> None:
    _create(cli, "--role", "admin", "--tenant", "default")
    key_id = "key_" + _create(cli, "--role", "viewer", "--tenant", "acme").split("_")[1]
    out = cli("keys", "revoke", key_id)
    assert out.returncode == 0, out.stderr
    revoked = json.loads(out.stdout)
    assert (revoked["id"], revoked["status"], revoked["revoked_by"]) == (key_id, "revoked", ME)
    assert key_id not in [k["id"] for k in _listed(cli)]
    assert [k["status"] for k in _listed(cli, "--all", "--tenant", "acme")] == ["revoked"]
    assert "(revoked)" in cli("keys", "list", "--all").stdout

    again = cli("keys", "revoke", key_id)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["revoked_at"] == revoked["revoked_at"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["create", "--role", "root", "--tenant", "acme"], "unknown role 'root'"),
        (["create", "--role", "viewer", "--tenant", "Acme Corp"], "tenant must be"),
        (["create", "--role", "viewer", "--tenant", "acme", "--name", "x" * 201], "name must"),
        (["create", "--role", "viewer", "--tenant", "a", "--rate-per-minute", "0"], "rate_per"),
        (["create", "--role", "viewer", "--tenant", "a", "--max-in-flight", "-1"], "max_in_fl"),
        (["list", "--tenant", "../etc"], "not a tenant name"),
        (["revoke", "key_000000000000"], "no key 'key_000000000000'"),
        (["revoke", "not-a-key"], "no key 'not-a-key'"),
    ],
)
def test_bad_input_exits_2_with_one_line(default_cli: Cli, args: list[str], says: str) -> None:
    if args[0] == "revoke":  # revoke needs the service's database (no database: exit 3)
        _create(default_cli, "--role", "admin", "--tenant", "default")
    out = default_cli("keys", *args)
    assert out.returncode == 2, out
    assert out.stdout == ""
    *named, said = out.stderr.splitlines()  # the database it used, then the error
    assert all(line.startswith("steadyvoice: using database ") for line in named), out.stderr
    assert said.startswith("steadyvoice: error: ") and says in said, out.stderr


def test_the_last_admin_key_stays(cli: Cli) -> None:
    first = "key_" + _create(cli, "--role", "admin", "--tenant", "default").split("_")[1]
    out = cli("keys", "revoke", first)
    assert out.returncode == 2 and out.stdout == ""
    said = out.stderr.splitlines()[-1]
    assert said.startswith("steadyvoice: error: last_admin_key: ")
    assert "last active admin key" in said
    _create(cli, "--role", "admin", "--tenant", "ops")
    assert cli("keys", "revoke", first).returncode == 0


def test_a_cli_key_works_in_the_api_until_revoked(
    cli: Cli,
    client_factory: Callable[..., TestClient],
    db_url: str,
) -> None:
    token = _create(
        cli, "--role", "operator", "--tenant", "acme", "--rate-per-minute", "77", "--name", "app"
    )
    client = client_factory(database_url=db_url)
    # The CLI made a key first, so the API made no bootstrap key of its own.
    assert "Authorization" not in client.headers
    error_of(client.get("/v1/me"), 401, "auth_required")
    client.headers["Authorization"] = f"Bearer {token}"
    me = client.get("/v1/me")
    assert me.status_code == 200, me.text
    assert me.json() == {
        "key_id": "key_" + token.split("_")[1],
        "tenant": "acme",
        "role": "operator",
        "rate_per_minute": 77,
        "max_in_flight": 50,
    }
    error_of(client.get("/v1/keys"), 403, "forbidden")  # an operator is no admin

    revoked = cli("keys", "revoke", me.json()["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    error_of(client.get("/v1/me"), 401, "key_revoked")  # at once, in another process


def test_voices_add_files_the_profile_under_a_tenant(
    cli: Cli,
    client_factory: Callable[..., TestClient],
    db_url: str,
    tmp_path: Path,
) -> None:
    ref = tmp_path / "ref.wav"
    ref.write_bytes(reference_wav())
    consent = "I, Jane Example, agree to my voice being used by acme. 2026-11-25."
    added = cli("voices", "add", "Jane", str(ref), "--consent", consent, "--tenant", "acme")
    assert added.returncode == 0, added.stderr
    voice = json.loads(added.stdout)
    assert voice["tenant"] == "acme" and voice["created_by"] == ME
    plain = cli("voices", "add", "Joe", str(ref), "--consent", consent)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["tenant"] == "default"
    bad = cli("voices", "add", "X", str(ref), "--consent", consent, "--tenant", "No Such")
    assert bad.returncode == 2
    assert "steadyvoice: error: invalid_request: " in bad.stderr

    acme = _create(cli, "--role", "viewer", "--tenant", "acme")
    other = _create(cli, "--role", "viewer", "--tenant", "beta")
    client = client_factory(database_url=db_url)
    client.headers["Authorization"] = f"Bearer {acme}"
    seen = client.get(f"/v1/voices/{voice['voice_id']}")
    assert seen.status_code == 200, seen.text
    assert [v["id"] for v in client.get("/v1/voices").json()["items"]] == [voice["voice_id"]]
    client.headers["Authorization"] = f"Bearer {other}"
    error_of(client.get(f"/v1/voices/{voice['voice_id']}"), 404, "voice_not_found")
