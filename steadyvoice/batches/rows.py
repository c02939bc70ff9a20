"""An upload turned into rows: CSV, JSONL or a JSON list of items, every bad row reported.

Rows are numbered from 1: the first item (for a CSV, the line after the header). Header
problems are reported as row 0. Parsing never raises for a client's bytes; it returns the
rows it could read and a :class:`RowError` for each problem, so one answer names them all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# The columns the service reads; any other column is free metadata, kept with the item.
KNOWN = ("text", "voice", "seed", "speed", "format", "name")
SOURCES = ("json", "csv", "jsonl")
MAX_NAME_CHARS = 200
MAX_METADATA_CHARS = 2_000
MAX_METADATA_COLUMNS = 32
MAX_FIELD_CHARS = 100_000  # any single field; the text's own limit is api.max_text_chars
MAX_ERRORS = 1_000  # reported in one answer; the rest are counted
SEED_MAX = 2**32 - 1
_SEED_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII only: "²".isdigit() holds, int() refuses it
# What no stored string may hold: PostgreSQL refuses NUL, UTF-8 cannot encode a lone
# surrogate, and a control character in a file name or a manifest cell is a trap. Metadata
# may hold tab, newline and carriage return (a multi-line CSV cell); a name or voice may not.
_CONTROL_IN_VALUE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_CONTROL_IN_NAME = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class RowError:
    """What is wrong, where: the row (0: the header), the column, a stable code."""

    row: int
    column: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Row:
    """One item as the client gave it, with CSV strings already turned into numbers."""

    number: int
    text: str
    voice: str | None = None
    seed: int | None = None
    speed: float = 1.0
    format: str = "wav"
    name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def canonical(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "voice": self.voice,
            "seed": self.seed,
            "speed": self.speed,
            "format": self.format,
            "name": self.name,
            "metadata": self.metadata,
        }


@dataclass
class Parsed:
    """The rows read, the metadata columns in first-seen order, and every problem found."""

    source: str
    rows: list[Row] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def error(self, row: int, column: str | None, code: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(row, column, code, message))

    def request_hash(self) -> str:
        """What a repeated ``Idempotency-Key`` must match: the items, not the bytes' layout."""
        body = json.dumps([r.canonical() for r in self.rows], sort_keys=True, ensure_ascii=False)
        # surrogatepass: a lone surrogate in a text is refused later (text_invalid), not here.
        return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def parse(data: bytes, source: str, max_items: int) -> Parsed:
    """The rows of an upload in ``source`` format (``csv``, ``jsonl`` or ``json``)."""
    parsed = Parsed(source)
    text = _decoded(data, parsed)
    if text is None:
        return parsed
    if source == "csv":
        records: Iterable[tuple[int, dict[str, Any]]] = _csv_records(text, parsed)
    elif source == "jsonl":
        records = _jsonl_records(text, parsed)
    else:
        records = _json_records(text, parsed)
    for number, record in records:
        if number > max_items:
            parsed.error(
                number,
                None,
                "too_many_items",
                f"more than {max_items} items; the limit is batch.max_items",
            )
            break
        row = _row(number, record, parsed)
        if row is not None:
            parsed.rows.append(row)
    if not parsed.rows and not parsed.errors:
        parsed.error(0, None, "batch_empty", "the batch has no items")
    return parsed


def _decoded(data: bytes, parsed: Parsed) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        # Line 1 of a CSV is its header (row 0); a JSONL line is its row.
        row = line - 1 if parsed.source == "csv" else line
        parsed.error(row, None, "encoding_invalid", f"line {line} is not UTF-8 (byte {exc.start})")
        return None


def _csv_records(text: str, parsed: Parsed) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        parsed.error(0, None, "header_invalid", f"the header cannot be read: {exc}")
        return
    if header is None or not _header_ok([h.strip() for h in header], parsed):
        return
    names = [h.strip() for h in header]
    number = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # an unclosed quote, a field over the csv module's limit
            number += 1
            code = "field_too_large" if "field larger" in str(exc) else "row_invalid"
            parsed.error(number, None, code, f"the row cannot be read: {exc}")
            return
        if not any(v.strip() for v in values):
            continue  # blank lines are not items
        number += 1
        if len(values) != len(names):
            parsed.error(
                number,
                None,
                "row_invalid",
                f"the row has {len(values)} fields; the header has {len(names)}",
            )
            continue
        # An empty cell is an absent value; an empty text is still a text (``text_empty``).
        yield number, {n: v for n, v in zip(names, values, strict=True) if v or n == "text"}


def _header_ok(names: list[str], parsed: Parsed) -> bool:
    ok = True
    if "text" not in names:
        parsed.error(0, "text", "header_invalid", f"the header has no text column: {names[:8]}")
        ok = False
    seen: set[str] = set()
    for name in names:
        if not name:
            parsed.error(0, None, "header_invalid", "a column of the header has no name")
            ok = False
        elif name in seen:
            parsed.error(0, name, "header_invalid", f"column {name!r} appears twice")
            ok = False
        elif _CONTROL_IN_NAME.search(name):
            parsed.error(0, None, "header_invalid", f"column {name!r} holds a control character")
            ok = False
        seen.add(name)
    if len(names) - len(set(names) & set(KNOWN)) > MAX_METADATA_COLUMNS:
        parsed.error(0, None, "header_invalid", f"over {MAX_METADATA_COLUMNS} metadata columns")
        ok = False
    return ok


def _jsonl_records(text: str, parsed: Parsed) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    # Split on "\n" only: str.splitlines() also breaks on U+2028, U+0085, \x1c-\x1e ...,
    # which JSON allows unescaped inside a string.
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        number += 1
        try:
            record = json.loads(line)
        except ValueError as exc:
            parsed.error(number, None, "row_invalid", f"not a JSON object: {exc}")
            continue
        if not isinstance(record, dict):
            parsed.error(number, None, "row_invalid", "not a JSON object")
            continue
        yield number, record


def _json_records(text: str, parsed: Parsed) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        body = json.loads(text)
    except ValueError as exc:
        parsed.error(0, None, "body_invalid", f"the body is not JSON: {exc}")
        return
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        parsed.error(0, "items", "body_invalid", 'the body must be {"items": [...]}')
        return
    for number, record in enumerate(items, start=1):
        if not isinstance(record, dict):
            parsed.error(number, None, "row_invalid", "an item must be a JSON object")
            continue
        yield number, record


def _row(number: int, record: dict[str, Any], parsed: Parsed) -> Row | None:
    before = parsed.error_count
    text = record.get("text")
    if not isinstance(text, str):
        parsed.error(number, "text", "text_missing", "each item needs a text")
        text = ""
    for column, value in record.items():
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            parsed.error(
                number, column, "field_too_large", f"{len(value)} chars; over {MAX_FIELD_CHARS}"
            )
    seed = _seed(number, record.get("seed"), parsed)
    speed = _speed(number, record.get("speed", 1.0), parsed)
    voice = _optional_str(number, "voice", record.get("voice"), parsed, 128)
    fmt = _optional_str(number, "format", record.get("format"), parsed, 16) or "wav"
    name = _optional_str(number, "name", record.get("name"), parsed, MAX_NAME_CHARS)
    metadata = _metadata(number, record, parsed)
    if parsed.error_count > before:
        return None
    return Row(number, text, voice, seed, speed, fmt, name, metadata)


def _seed(number: int, value: Any, parsed: Parsed) -> int | None:
    if value is None:
        return None
    seed: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seed = value
    elif isinstance(value, str) and _SEED_DIGITS.fullmatch(value.strip()):
        seed = int(value.strip())
    if seed is None or not 0 <= seed <= SEED_MAX:
        parsed.error(number, "seed", "seed_invalid", f"a seed is a whole number 0..{SEED_MAX}")
        return None
    return seed


def _speed(number: int, value: Any, parsed: Parsed) -> float:
    try:
        speed = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError, OverflowError):  # a 400-digit JSON integer overflows
        speed = -1.0
    if not 0.25 <= speed <= 4.0:  # NaN and infinities fail this too
        parsed.error(number, "speed", "speed_invalid", "speed is a number from 0.25 to 4.0")
        return 1.0
    return speed


def _optional_str(number: int, column: str, value: Any, parsed: Parsed, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        parsed.error(number, column, f"{column}_invalid", f"{column} must be a string")
        return None
    if len(value) > limit:
        parsed.error(number, column, f"{column}_too_long", f"over {limit} characters")
        return None
    if _CONTROL_IN_NAME.search(value):
        parsed.error(number, column, f"{column}_invalid", f"{column} holds a control character")
        return None
    return value


def _metadata(number: int, record: dict[str, Any], parsed: Parsed) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for column, value in record.items():
        if column in KNOWN:
            continue
        if _CONTROL_IN_NAME.search(column):
            parsed.error(
                number, None, "metadata_invalid", "a column name holds a control character"
            )
            continue
        if column not in parsed.columns:
            if len(parsed.columns) >= MAX_METADATA_COLUMNS:
                parsed.error(number, column, "metadata_invalid", "too many metadata columns")
                continue
            parsed.columns.append(column)
        if value is not None and not isinstance(value, str | int | float | bool):
            parsed.error(number, column, "metadata_invalid", "metadata values are scalars")
        elif isinstance(value, str) and len(value) > MAX_METADATA_CHARS:
            parsed.error(number, column, "metadata_too_long", f"over {MAX_METADATA_CHARS} chars")
        elif isinstance(value, str) and _CONTROL_IN_VALUE.search(value):
            parsed.error(number, column, "metadata_invalid", "the value holds a control character")
        elif isinstance(value, float) and not math.isfinite(value):
            # JSON has no NaN or Infinity: PostgreSQL would refuse it, manifest.json break.
            parsed.error(number, column, "metadata_invalid", "metadata numbers must be finite")
        else:
            metadata[column] = value
    return metadata
