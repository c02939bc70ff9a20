"""The STEADYVOICE_* environment: client variables, natural lists, bad JSON refused in one line.

The list, dict and group cases are drawn from the settings model, so a setting added later is
covered without editing this file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from steadyvoice import environment
from steadyvoice.environment import (
    CLIENT_VARIABLES,
    DEFAULT_URL,
    KEY_VARIABLE,
    URL_VARIABLE,
    EnvVariable,
    settings_variables,
)
from steadyvoice.jobs.store import JobStore
from steadyvoice.settings import ConfigurationError, Settings, load_settings, unknown_env_names

VARIABLES = list(settings_variables(Settings))
LISTS = [v for v in VARIABLES if v.kind == "list"]
OBJECTS = [v for v in VARIABLES if v.kind == "object"]
GROUPS = [v for v in VARIABLES if v.kind == "group"]


def _value(settings: Settings, variable: EnvVariable) -> Any:
    value: Any = settings
    for part in variable.setting.split("."):
        value = getattr(value, part)
    return value


def _ids(variables: list[EnvVariable]) -> list[str]:
    return [v.name for v in variables]


def _steadyvoice_command() -> str:
    command = shutil.which("steadyvoice", path=str(Path(sys.executable).parent))
    assert command is not None, "the steadyvoice console script is not installed in the venv"
    return command


def _run(env_values: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYVOICE_")}
    env.update(env_values)
    return subprocess.run(
        [_steadyvoice_command(), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_the_model_has_the_settings_this_file_is_about() -> None:
    assert {"STEADYVOICE_API__CORS_ORIGINS", "STEADYVOICE_SPEECH__MODELS"} <= set(_ids(LISTS))
    assert {"STEADYVOICE_PIPER__VOICES", "STEADYVOICE_SPEECH__VOICE_MAP"} <= set(_ids(OBJECTS))
    assert "STEADYVOICE_JOBS" in _ids(GROUPS)
    assert "STEADYVOICE_JOBS__LEASE_SECONDS" in _ids(VARIABLES)


# Client variables


def test_client_variables_are_the_key_and_the_url() -> None:
    assert set(CLIENT_VARIABLES) == {KEY_VARIABLE, URL_VARIABLE}
    assert (KEY_VARIABLE, URL_VARIABLE) == ("STEADYVOICE_KEY", "STEADYVOICE_URL")
    assert DEFAULT_URL == "http://127.0.0.1:7860"
    assert not set(CLIENT_VARIABLES) & set(_ids(VARIABLES))


def test_client_variables_do_not_stop_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEADYVOICE_KEY", "sv_example")
    monkeypatch.setenv("STEADYVOICE_URL", "http://example:9000")
    monkeypatch.setenv("STEADYVOICE_API__PORT", "9001")
    assert unknown_env_names() == []
    settings = load_settings()
    assert settings.api.port == 9001  # ignored, not read as a setting


@pytest.mark.parametrize(
    "name", ["STEADYVOICE_KEYS", "STEADYVOICE_API_KEY", "STEADYVOICE_URL__X", "STEADYVOICE_KEY_2"]
)
def test_other_unknown_variables_are_still_refused(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("STEADYVOICE_KEY", "sv_example")
    monkeypatch.setenv(name, "x")
    with pytest.raises(ConfigurationError, match=re.escape(f"unknown setting(s): {name} ")):
        load_settings()


def test_a_command_runs_with_client_variables_and_refuses_a_typo(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    JobStore.from_url(f"sqlite:///{data_dir / 'steadyvoice.db'}", data_dir).migrate()
    env = {
        "STEADYVOICE_DATA_DIR": str(data_dir),
        "STEADYVOICE_KEY": "sv_example",
        "STEADYVOICE_URL": "http://127.0.0.1:7860",
    }
    ok = _run(env, "verify", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "unknown setting" not in ok.stderr
    typo = _run(env | {"STEADYVOICE_KEYS": "x"}, "verify", cwd=tmp_path)
    assert typo.returncode == 2
    assert typo.stderr.strip().splitlines() == [
        "steadyvoice: configuration error: unknown setting(s): STEADYVOICE_KEYS "
        "(see docs/configuration.md)"
    ]


# Lists


@pytest.mark.parametrize("variable", LISTS, ids=_ids(LISTS))
@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("https://app.example", ["https://app.example"]),
        ("alpha,beta", ["alpha", "beta"]),
        (" alpha , beta ,", ["alpha", "beta"]),
        ('["alpha", "beta,gamma"]', ["alpha", "beta,gamma"]),
        ("", []),
        ("[]", []),
    ],
)
def test_every_list_setting_takes_natural_forms(
    monkeypatch: pytest.MonkeyPatch, variable: EnvVariable, written: str, read: list[str]
) -> None:
    monkeypatch.setenv(variable.name, written)
    assert _value(load_settings(), variable) == read


@pytest.mark.parametrize("variable", LISTS, ids=_ids(LISTS))
@pytest.mark.parametrize("written", ['["alpha"', "[1, 2", '["a" "b"]'])
def test_every_list_setting_refuses_bad_json_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: EnvVariable, written: str
) -> None:
    monkeypatch.setenv(variable.name, written)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(variable.name + " ")
    assert "a comma-separated list like " in message
    assert "or a JSON list like [" in message
    assert "\n" not in message


# Dicts and whole groups


@pytest.mark.parametrize("variable", OBJECTS, ids=_ids(OBJECTS))
def test_every_dict_setting_takes_a_json_object_or_nothing(
    monkeypatch: pytest.MonkeyPatch, variable: EnvVariable
) -> None:
    examples = variable.field.examples or [{"alpha": "beta"}]
    written = examples[0]  # the documented example: values of the setting's own type
    monkeypatch.setenv(variable.name, json.dumps(written))
    got = _value(load_settings(), variable)
    assert {
        k: v.model_dump(exclude_unset=True) if hasattr(v, "model_dump") else str(v)
        for k, v in got.items()
    } == written
    monkeypatch.setenv(variable.name, "")
    assert _value(load_settings(), variable) == {}


@pytest.mark.parametrize("variable", OBJECTS + GROUPS, ids=_ids(OBJECTS + GROUPS))
@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("notjson", "is not valid JSON (Expecting value at character 1); expected "),
        ('{"alpha": ', "is not valid JSON (Expecting value at character 10); expected "),
        ('["alpha"]', "must be "),
        ("alpha=beta", "is not valid JSON"),
    ],
)
def test_every_dict_and_group_refuses_bad_json_in_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: EnvVariable, written: str, problem: str
) -> None:
    monkeypatch.setenv(variable.name, written)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{variable.name} {problem}")
    assert "a JSON object " in message and " like {" in message
    assert "\n" not in message


def test_the_expected_form_has_the_settings_own_example() -> None:
    by_name = {v.name: v for v in VARIABLES}
    assert environment.expected_form(by_name["STEADYVOICE_PIPER__VOICES"]) == (
        'a JSON object like {"name": "/path/voice.onnx"}'
    )
    assert environment.expected_form(by_name["STEADYVOICE_API__CORS_ORIGINS"]) == (
        'a comma-separated list like https://app.example or a JSON list like ["https://app.example"]'
    )
    assert environment.expected_form(by_name["STEADYVOICE_JOBS"]) == (
        'a JSON object of jobs settings like {"lease_seconds": 30.0}'
    )


def test_a_group_given_as_json_still_yields_to_its_own_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STEADYVOICE_JOBS", '{"lease_seconds": 60, "heartbeat_seconds": 10}')
    monkeypatch.setenv("STEADYVOICE_JOBS__LEASE_SECONDS", "40")
    monkeypatch.setenv("STEADYVOICE_API", '{"cors_origins": ["https://a.example"]}')
    settings = load_settings()
    assert (settings.jobs.lease_seconds, settings.jobs.heartbeat_seconds) == (40.0, 10.0)
    assert settings.api.cors_origins == ["https://a.example"]


def test_variable_names_are_matched_without_regard_to_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("steadyvoice_api__cors_origins", "a,b")
    assert load_settings().api.cors_origins == ["a", "b"]
    monkeypatch.setenv("steadyvoice_piper__voices", "notjson")
    with pytest.raises(ConfigurationError, match=r"^STEADYVOICE_PIPER__VOICES is not valid JSON"):
        load_settings()


def test_a_form_the_check_misses_is_still_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(environment, "natural_env", lambda env_vars, model: dict(env_vars))
    monkeypatch.setenv("STEADYVOICE_PIPER__VOICES", "notjson")
    with pytest.raises(ConfigurationError, match=r'^invalid settings: .*field "piper"'):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [("STEADYVOICE_PIPER__VOICES", "notjson"), ("STEADYVOICE_API__CORS_ORIGINS", "[x")],
)
def test_the_command_says_it_in_one_line_with_exit_code_2(
    tmp_path: Path, name: str, value: str
) -> None:
    out = _run({"STEADYVOICE_DATA_DIR": str(tmp_path / "data"), name: value}, "serve", cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"steadyvoice: configuration error: {name} is not valid JSON")
    assert "expected a " in lines[0]
    assert not (tmp_path / "data").exists()
