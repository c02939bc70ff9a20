"""docs/configuration.md lists every setting, and the docs name no variable that does not exist.

The settings model is walked recursively (every group, at any depth), so a setting added to the
model without a row in the table, or a row left behind by a removed setting, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic.fields import FieldInfo

from steadyvoice.environment import CLIENT_VARIABLES, DEFAULT_URL, settings_variables
from steadyvoice.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = ROOT / "docs" / "configuration.md"
VARIABLES = {v.name: v for v in settings_variables(Settings)}
SETTINGS = {name for name, v in VARIABLES.items() if v.kind != "group"}
NAME = re.compile(r"STEADYVOICE_[A-Za-z0-9_]*[A-Za-z0-9]")


def _sections(text: str) -> dict[str, str]:
    """The document's text by ``## `` heading; the part before the first one is ``""``."""
    sections: dict[str, str] = {}
    title = ""
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
        sections[title] = sections.get(title, "") + line
    return sections


def _table_rows(section: str) -> dict[str, str]:
    """Each variable named in a table's first column, with its whole row."""
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = line.split("|")
        if not line.startswith("| `") or len(cells) < 4:
            continue
        for name in re.findall(r"`(STEADYVOICE_[A-Z0-9_]+)`", cells[1]):
            assert name not in rows, f"{name} has two rows"
            rows[name] = line
    return rows


SECTIONS = _sections(CONFIGURATION.read_text(encoding="utf-8"))
SETTINGS_TABLE = _table_rows(SECTIONS[""])
CLIENT_TABLE = _table_rows(SECTIONS["Client variables"])


def test_the_walk_reaches_every_group() -> None:
    groups = {v.setting for v in VARIABLES.values() if v.kind == "group"}
    assert {"api", "jobs", "speech", "piper", "cosyvoice", "worker"} <= groups
    assert "STEADYVOICE_SPEECH__CHUNK_RETENTION_SECONDS" in SETTINGS


def test_every_setting_has_a_row() -> None:
    missing = sorted(SETTINGS - set(SETTINGS_TABLE))
    assert missing == [], f"add rows to docs/configuration.md for {missing}"


def test_every_row_is_a_setting() -> None:
    unknown = sorted(set(SETTINGS_TABLE) - SETTINGS)
    assert unknown == [], f"docs/configuration.md has rows for no setting: {unknown}"


def test_every_row_gives_a_default_and_a_meaning() -> None:
    for name, row in SETTINGS_TABLE.items():
        _, _, default, meaning, *_ = row.split("|")
        assert default.strip() and meaning.strip(), f"{name}: {row}"


def _default_cell(field: FieldInfo) -> str | None:
    """The default as the table writes it; None where the table says it in words."""
    if field.default_factory_takes_validated_data:
        return None  # sized at start (``auto``)
    value = field.get_default(call_default_factory=True, validated_data={})
    if isinstance(value, list):
        return f"`{','.join(map(str, value))}`" if value else "empty"
    if isinstance(value, dict):
        return None if value else "`{}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, (str, int, float, Path)):
        return f"`{value}`"
    return None


def test_every_written_default_is_the_models() -> None:
    wrong = []
    for name, row in SETTINGS_TABLE.items():
        expected = _default_cell(VARIABLES[name].field)
        if expected is not None and expected not in row.split("|")[2]:
            wrong.append(f"{name}: the model says {expected}")
    assert wrong == []


def test_the_client_variables_have_their_own_table() -> None:
    assert set(CLIENT_TABLE) == set(CLIENT_VARIABLES)
    assert not set(CLIENT_VARIABLES) & set(SETTINGS_TABLE)
    assert DEFAULT_URL in CLIENT_TABLE["STEADYVOICE_URL"]
    assert "ignores them" in SECTIONS["Client variables"]


def _test_suite_variables() -> set[str]:
    """``STEADYVOICE_TEST_*``: read by the test suite itself (an opt-in suite's checkout)."""
    test_name = re.compile(r"STEADYVOICE_TEST_[A-Z0-9_]*[A-Z0-9]")
    found = (
        test_name.findall(p.read_text(encoding="utf-8")) for p in (ROOT / "tests").rglob("*.py")
    )
    return {name for names in found for name in names}


def test_the_docs_name_only_variables_that_exist() -> None:
    known = set(VARIABLES) | set(CLIENT_VARIABLES) | _test_suite_variables()
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in docs
        for name in NAME.findall(path.read_text(encoding="utf-8"))
        if name.upper() not in known
    }
    assert sorted(unknown) == []
