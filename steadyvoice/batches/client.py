"""The HTTP side of ``steadyvoice batch``: the service's batch routes, and the archive unpacked
with every file checked against its manifest."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from steadyvoice.environment import DEFAULT_URL, KEY_VARIABLE, URL_VARIABLE

CONTENT_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson", ".json": "application/json"}
CONTENT_TYPES[".ndjson"] = CONTENT_TYPES[".jsonl"]
CHUNK = 1024 * 1024


class ClientError(Exception):
    """The service refused, or could not be reached; ``code`` as the service names it."""

    def __init__(
        self, code: str, message: str, body: dict[str, Any] | None = None, *, failed: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.body = body or {}
        # Not a refusal of what was asked but a failure to get an answer (no service, a 5xx):
        # exit status 1, like every command's "failed", not 2.
        self.failed = failed


@dataclass(frozen=True)
class Unpacked:
    """What an archive held: the files written and checked, and any that did not match."""

    files: int
    mismatched: list[str]


def file_key(data: bytes) -> str:
    """The ``Idempotency-Key`` of a batch file: its own hash, so a rerun resumes the batch."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def connect(server: str | None, key_file: Path | None) -> httpx.Client:
    """A client for ``server`` (else ``$STEADYVOICE_URL``) with the key in ``key_file`` (else
    ``$STEADYVOICE_KEY``)."""
    base = server or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    key = key_file.read_text().strip() if key_file else os.environ.get(KEY_VARIABLE, "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base, headers=headers, timeout=httpx.Timeout(60.0, connect=10.0))


def submit(client: httpx.Client, path: Path) -> dict[str, Any]:
    """Upload a CSV, JSONL or JSON file; its SHA-256 is the ``Idempotency-Key``, so sending
    the same file again returns the batch it made, never a second one."""
    kind = CONTENT_TYPES.get(path.suffix.lower())
    if kind is None:
        raise ClientError("unsupported_file", f"{path.name}: a batch file is .csv, .jsonl or .json")
    data = path.read_bytes()
    headers = {"Content-Type": kind, "Idempotency-Key": file_key(data)}
    return _answer(_call(lambda: client.post("/v1/batches", content=data, headers=headers)))


def get(client: httpx.Client, url: str, **params: Any) -> dict[str, Any]:
    return _answer(_call(lambda: client.get(url, params=params)))


def post(client: httpx.Client, url: str) -> dict[str, Any]:
    return _answer(_call(lambda: client.post(url)))


def download(client: httpx.Client, batch_id: str, target: Path) -> None:
    """The batch's archive into ``target``, streamed to disk (never held in memory)."""
    partial = target.with_name(target.name + ".part")
    try:
        with client.stream("GET", f"/v1/batches/{batch_id}/archive") as response:
            if response.status_code != 200:
                response.read()
                _answer(response)
            with partial.open("wb") as out:
                for block in response.iter_bytes(CHUNK):
                    out.write(block)
    except httpx.HTTPError as exc:
        raise ClientError(
            "unreachable", f"the archive download failed: {exc}", failed=True
        ) from None
    partial.replace(target)


def unpack(archive: Path, out: Path) -> Unpacked:
    """Write the archive's files under ``out``, checking each audio file's SHA-256 against
    ``manifest.json``; only names the manifest lists (and the manifests) are written."""
    mismatched: list[str] = []
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for name in ("manifest.json", "manifest.csv"):
            (out / name).write_bytes(zf.read(name))
        for item in manifest["items"]:
            name = _safe(str(item["file"]))
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with zf.open(str(item["file"])) as src, target.open("wb") as dst:
                while block := src.read(CHUNK):
                    digest.update(block)
                    dst.write(block)
            if digest.hexdigest() != item["sha256"]:
                mismatched.append(name)
    return Unpacked(len(manifest["items"]), mismatched)


def _safe(name: str) -> str:
    """A relative path inside the output folder, or ``archive_invalid``: never ``..`` or /."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ClientError("archive_invalid", f"the archive names an unsafe path: {name!r}")
    return str(path)


def _call(send: Callable[[], httpx.Response]) -> httpx.Response:
    try:
        return send()
    except httpx.HTTPError as exc:
        raise ClientError(
            "unreachable", f"the service did not answer: {exc}", failed=True
        ) from None


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict):
        return body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        raise ClientError(
            str(error.get("code")),
            str(error.get("message")),
            error,
            failed=response.status_code >= 500,
        )
    raise ClientError("http_error", f"the service answered {response.status_code}", failed=True)
