"""A batch request's body, whatever form it came in, read into rows.

``application/json`` (``{"items": [...]}``), ``text/csv``, ``application/x-ndjson`` (JSONL),
or ``multipart/form-data`` with the file in the ``file`` part (its name or type says which).
The body limit (``batch.max_body_bytes``) is enforced by the body-limit middleware first.
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import UploadFile

from steadyvoice.batches.rows import Parsed, parse
from steadyvoice.errors import InvalidRequest

_TYPES = {
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
}
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


async def read_rows(request: Request, max_items: int) -> Parsed:
    """The rows the body holds, every problem with them noted (never raised)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        data, source = await _file_part(request)
    elif media in _TYPES:
        data, source = await request.body(), _TYPES[media]
    else:
        raise _unsupported(media)
    return parse(data, source, max_items)


async def _file_part(request: Request) -> tuple[bytes, str]:
    async with request.form(max_files=1, max_fields=8) as form:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise InvalidRequest("the upload needs its file in the 'file' part", field="file")
        name = (part.filename or "").lower()
        suffix = name[name.rfind(".") :] if "." in name else ""
        media = (part.content_type or "").split(";")[0].strip().lower()
        source = _SUFFIXES.get(suffix) or _TYPES.get(media)
        if source is None:
            raise _unsupported(media or suffix)
        return await part.read(), source


def _unsupported(what: str) -> InvalidRequest:
    return InvalidRequest(
        f"a batch comes as JSON, CSV or JSONL, not {what or 'an unnamed type'}",
        field="content-type",
        supported=sorted(_TYPES),
    )
