"""JSON-lines logging to stdout, with the request id and job id on every line they apply to."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id_var), ("job_id", job_id_var)):
            if not hasattr(record, name):
                value = var.get()
                if value is not None:
                    setattr(record, name, value)
        return True


def configure_logging(level: str = "INFO", component: str = "api") -> None:
    """Replace root handlers with one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            static_fields={"component": component},
            timestamp="time",
        )
    )
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def job_context(job_id: str, request_id: str | None = None) -> Iterator[None]:
    job_token = job_id_var.set(job_id)
    req_token = request_id_var.set(request_id)
    try:
        yield
    finally:
        job_id_var.reset(job_token)
        request_id_var.reset(req_token)


def event(logger: logging.Logger, name: str, **fields: Any) -> None:
    """Log one structured event at INFO. Never pass request text here, only its length/hash."""
    logger.info(name, extra={"event": name, **fields})
