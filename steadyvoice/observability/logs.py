"""Logging to stdout, with the request id and job id on every line they apply to.

JSON lines for services; readable text lines (``log_text``) on a terminal (``log_format``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from steadyvoice.observability.log_text import TextFormatter

LogFormat = Literal["json", "text"]

# The AWS SDK and the HTTP client under it: never below WARNING (see configure_logging).
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id_var), ("job_id", job_id_var)):
            if not hasattr(record, name):
                value = var.get()
                if value is not None:
                    setattr(record, name, value)
        # uvicorn's copy of its message with ANSI colour codes: never in a log line.
        record.__dict__.pop("color_message", None)
        return True


def resolve_format(setting: str, stream: TextIO) -> LogFormat:
    """``auto`` is text on a terminal and JSON otherwise (a service manager, a pipe, a file)."""
    if setting == "json":
        return "json"
    if setting == "text":
        return "text"
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure_logging(
    level: str = "INFO",
    component: str = "api",
    log_format: str = "auto",
    stream: TextIO | None = None,
) -> LogFormat:
    """Replace root handlers with one handler on stdout; return the format it writes."""
    out = sys.stdout if stream is None else stream
    chosen = resolve_format(log_format, out)
    handler = logging.StreamHandler(out)
    formatter: logging.Formatter
    if chosen == "text":
        formatter = TextFormatter()
    else:
        formatter = JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            static_fields={"component": component},
            timestamp="time",
        )
    handler.setFormatter(formatter)
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Pinned whatever the service's level: at DEBUG botocore logs every request's signed
    # headers and its credentials (the access key id, AWS_SESSION_TOKEN), urllib3 the URLs.
    for sdk in SDK_LOGGERS:
        logging.getLogger(sdk).setLevel(logging.WARNING)
    return chosen


@contextmanager
def job_context(job_id: str, request_id: str | None = None) -> Iterator[None]:
    job_token = job_id_var.set(job_id)
    req_token = request_id_var.set(request_id)
    try:
        yield
    finally:
        job_id_var.reset(job_token)
        request_id_var.reset(req_token)


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event (at INFO unless ``level`` says otherwise). Never pass request
    text here, only its length/hash."""
    logger.log(level, name, extra={"event": name, **fields})
