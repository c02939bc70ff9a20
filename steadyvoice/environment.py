"""The ``STEADYVOICE_*`` environment: which variables exist, and values as people write them.

Every setting is read from ``STEADYVOICE_<NAME>`` or ``STEADYVOICE_<GROUP>__<NAME>``
(steadyvoice.settings). Two more variables belong to clients (curl in the docs, client
commands), not to the server, which ignores them: ``STEADYVOICE_KEY`` and ``STEADYVOICE_URL``.

pydantic-settings reads list and dict settings as JSON only, and a bad value ends in a traceback
that names only the group. ``natural_env`` runs first: a list may be comma-separated
(``https://a.example,https://b.example``) or JSON, and any JSON that a list, dict or group
needs is checked here, so a bad value is refused in one line naming the variable and the form.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

ENV_PREFIX = "STEADYVOICE_"
NESTED_DELIMITER = "__"

KEY_VARIABLE = "STEADYVOICE_KEY"
URL_VARIABLE = "STEADYVOICE_URL"
DEFAULT_URL = "http://127.0.0.1:7860"
CLIENT_VARIABLES = {
    KEY_VARIABLE: "the API key a client sends (Authorization: Bearer $STEADYVOICE_KEY)",
    URL_VARIABLE: f"the server's base URL (default {DEFAULT_URL})",
}

Kind = Literal["value", "list", "object", "group"]


class EnvValueError(ValueError):
    """A ``STEADYVOICE_*`` value that is not in the form its setting needs."""


@dataclass(frozen=True)
class EnvVariable:
    """One variable a settings model reads: ``STEADYVOICE_PIPER__VOICES`` for ``piper.voices``."""

    name: str
    setting: str
    kind: Kind
    field: FieldInfo


def settings_variables(
    model: type[BaseModel], prefix: str = ENV_PREFIX, parent: str = ""
) -> Iterator[EnvVariable]:
    """Every variable of ``model``, groups (which take JSON) and their members, at any depth."""
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name}".upper()
        setting = f"{parent}{field_name}"
        kind = _kind(field.annotation)
        yield EnvVariable(name, setting, kind, field)
        group = _group_model(field.annotation)
        if group is not None:
            yield from settings_variables(group, name + NESTED_DELIMITER, setting + ".")


def unknown_env_names(model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """``STEADYVOICE_*`` variables that no setting reads and that are not client variables."""
    known = {variable.name for variable in settings_variables(model)} | set(CLIENT_VARIABLES)
    return sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


def natural_env(
    env_vars: Mapping[str, str | None], model: type[BaseModel]
) -> dict[str, str | None]:
    """``env_vars`` with list values as JSON lists and every JSON value checked.

    Keys are matched without regard to case, as pydantic-settings matches them.
    """
    complex_variables = {v.name: v for v in settings_variables(model) if v.kind != "value"}
    result = dict(env_vars)
    for key, value in env_vars.items():
        variable = complex_variables.get(key.upper())
        if variable is not None and value is not None:
            result[key] = _as_json(variable, value)
    return result


def _as_json(variable: EnvVariable, value: str) -> str:
    text = value.strip()
    if not text:
        return "[]" if variable.kind == "list" else "{}"
    if variable.kind == "list" and not text.startswith("["):
        return json.dumps([item.strip() for item in text.split(",") if item.strip()])
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EnvValueError(
            f"{variable.name} is not valid JSON ({exc.msg} at character {exc.pos + 1}); "
            f"expected {expected_form(variable)}"
        ) from None
    if not isinstance(decoded, list if variable.kind == "list" else dict):
        raise EnvValueError(f"{variable.name} must be {expected_form(variable)}")
    return text


def expected_form(variable: EnvVariable) -> str:
    """What a list, dict or group variable takes, with an example."""
    example = variable.field.examples[0] if variable.field.examples else None
    if variable.kind == "list":
        items = example if isinstance(example, list) else ["a", "b"]
        return (
            f"a comma-separated list like {','.join(map(str, items))} "
            f"or a JSON list like {_json(items)}"
        )
    if variable.kind == "object":
        return f"a JSON object like {_json(example or {'name': 'value'})}"
    group = _group_model(variable.field.annotation)
    sample = _sample_setting(group) if group is not None else {}
    return f"a JSON object of {variable.setting} settings like {_json(sample)}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _sample_setting(group: type[BaseModel]) -> dict[str, Any]:
    for name, field in group.model_fields.items():
        if isinstance(field.default, (str, int, float, bool)):
            return {name: field.default}
    return {}


def _kind(annotation: Any) -> Kind:
    annotation = _without_none(annotation)
    if _group_model(annotation) is not None:
        return "group"
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return "list"
    if origin is dict:
        return "object"
    return "value"


def _group_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _without_none(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _without_none(annotation: Any) -> Any:
    """``X`` for ``X | None``; anything else as it is."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
