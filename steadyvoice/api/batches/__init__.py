"""Batch routes (docs/batches.md): ``router`` holds submit, read, list, cancel, retry, archive.

``upload`` turns a request body (JSON, CSV, JSONL or a multipart file) into rows; ``schemas``
holds the answers; ``routes`` the handlers.
"""

from steadyvoice.api.batches.routes import router

__all__ = ["router"]
