"""A real S3 HTTP endpoint for tests: moto's standalone server (``moto_server``) in a process of
its own, on a free port of the loopback. Nothing inside the client is patched: the code under
test speaks the S3 protocol over HTTP to it, as it would to AWS, MinIO or Ceph RGW.

moto records the SHA-256 a PUT declares (``x-amz-checksum-sha256``) but, as of 5.2, does not
check it against the body ("TODO: AWS computes the provided value and verifies" in
``moto/s3/responses.py``). AWS does: a body whose SHA-256 differs is refused with 400
``BadDigest`` ("The SHA256 you specified did not match the calculated checksum."), a value that
is not a base64 SHA-256 with 400 ``InvalidRequest``. So the server runs moto's own WSGI app
behind :class:`ChecksumCheck`, a small WSGI middleware that does exactly that check and answers
as AWS does, and nothing more (``python tests/s3_server.py -p PORT``). Remove it once moto
verifies.

The server keeps its objects in memory: :meth:`S3Server.stop` then :meth:`S3Server.start` is an
outage that loses nothing only while the process lives, so an outage test pauses it instead
(:meth:`S3Server.pause` / :meth:`S3Server.resume`: SIGSTOP / SIGCONT, connections time out).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from processes import free_port, poll  # type: ignore[import-not-found]

REGION = "us-east-1"
# moto accepts any credentials; these are the ones the tests' clients and services use.
ACCESS_KEY = "steadyvoice-test"
SECRET_KEY = "steadyvoice-test-secret"
HERE = Path(__file__).resolve()

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def aws_error(code: str, message: str) -> bytes:
    """An S3 error body as AWS writes it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()


class ChecksumCheck:
    """What AWS does and moto does not yet: recompute the SHA-256 of a PUT's body and refuse it
    when it differs from ``x-amz-checksum-sha256``. Bodies sent ``aws-chunked`` (a trailing
    checksum) pass through unchecked: the service's client never sends them (it sends the
    header, over a plain body)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        declared = environ.get("HTTP_X_AMZ_CHECKSUM_SHA256")
        chunked = "aws-chunked" in environ.get("HTTP_CONTENT_ENCODING", "")
        if environ["REQUEST_METHOD"] != "PUT" or not declared or chunked:
            return self.app(environ, start)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            expected = base64.b64decode(declared, validate=True)
        except (binascii.Error, ValueError):
            expected = b""
        if len(expected) != hashlib.sha256().digest_size:
            return self._refuse(
                start, "InvalidRequest", "Value for x-amz-checksum-sha256 header is invalid."
            )
        if hashlib.sha256(body).digest() != expected:
            return self._refuse(
                start,
                "BadDigest",
                "The SHA256 you specified did not match the calculated checksum.",
            )
        return self.app(environ, start)

    @staticmethod
    def _refuse(start: Callable[..., Any], code: str, message: str) -> list[bytes]:
        body = aws_error(code, message)
        start(
            "400 Bad Request",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]


def serve(host: str, port: int) -> None:
    """moto's standalone server (as ``python -m moto.server`` runs it), checksums checked."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        ChecksumCheck(app),  # type: ignore[arg-type]
        threaded=True,
        request_handler=MotoRequestHandler,
    )


class S3Server:
    """One ``moto_server`` process and a client for it."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        poll(self._answers, 30, f"moto_server on {self.url}")

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"moto_server exited: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/moto-api/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def pause(self) -> None:
        """An outage: the server stops answering (connections hang, then time out)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        name = f"sv-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """The standard AWS variables a service (or CLI) process needs to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def storage_settings(server: S3Server, bucket: str, **overrides: Any) -> dict[str, Any]:
    """``storage`` settings for ``bucket`` on ``server``, with retries and timeouts short enough
    for tests (an outage fails a job in a few seconds, not minutes)."""
    values: dict[str, Any] = {
        "backend": "s3",
        "s3_bucket": bucket,
        "s3_prefix": "sv",
        "s3_endpoint_url": server.url,
        "s3_region": REGION,
        "s3_timeout_seconds": 1.0,
        "upload_retries": 2,
        "upload_backoff_seconds": 0.05,
        "s3_check_seconds": 0.2,
    }
    values.update(overrides)
    return values


def storage_env(server: S3Server, bucket: str, **overrides: Any) -> dict[str, str]:
    """The same as ``STEADYVOICE_STORAGE__*`` variables for a service process (plus the AWS
    credential variables), keys as ``service_env`` takes them."""
    values = storage_settings(server, bucket, **overrides)
    return {
        f"storage__{k}": str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in values.items()
    }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto server for the whole run (each test makes its own bucket with ``new_bucket``)."""
    server = S3Server(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_s3_server(tmp_path: Path) -> Iterator[S3Server]:
    """A moto server of the test's own, for tests that pause or stop it."""
    server = S3Server(tmp_path / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The AWS credential variables set in this (test) process, for in-process clients."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    os.environ.pop("AWS_CONFIG_FILE", None)
    return s3_server


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=serve.__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.host, args.port)
