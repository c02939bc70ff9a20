"""Readable one-line logs for a terminal: ``time level logger message key=value ...``."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

# Attributes every LogRecord has; whatever else a record carries came in through ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def _value(value: Any) -> str:
    if isinstance(value, str):
        if value and not any(c.isspace() or c in '"=' for c in value):
            return value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """One plain line per record (no colours): local time, level, logger, message, then the
    record's structured fields as ``key=value`` (strings with spaces quoted as JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        when = datetime.fromtimestamp(record.created).isoformat(sep=" ", timespec="milliseconds")
        parts = [when, record.levelname, record.name, message]
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if key == "event" and value == message:  # event(): the message is the event name
                continue
            parts.append(f"{key}={_value(value)}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line
