"""The example reverse proxy in deploy/nginx/ works in front of a real service.

A real nginx (Debian package ``nginx``; ``scripts/ensure-nginx.sh``, run by ``make pytest``,
installs it) runs the shipped config with only its placeholders substituted: host name,
certificate paths, upstream address, listen ports and log directory. Without nginx the test
fails: an example nobody ran is an example that may not start.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import (  # type: ignore[import-not-found]
    Service,
    ServiceFactory,
    admin_key,
    free_port,
    poll,
)

from steadyvoice.api.app import MULTIPART_OVERHEAD
from steadyvoice.settings import (
    ApiSettings,
    BatchSettings,
    JobSettings,
    SecuritySettings,
    VoiceSettings,
)

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx" / "steadyvoice.conf"
HOST = "localhost"  # the server_name the test substitutes, and the name in its certificate
STREAMING = "/v1/audio/speech"


# --- the config, parsed ---------------------------------------------------------------------


@dataclass
class Directive:
    """One nginx directive: its name and arguments, and its block if it has one."""

    args: list[str]
    block: list[Directive] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.args[0]

    def all(self, name: str) -> list[list[str]]:
        return [d.args[1:] for d in self.block if d.name == name]

    def one(self, name: str) -> list[str]:
        found = self.all(name)
        assert len(found) == 1, f"{' '.join(self.args)}: {len(found)} `{name}` directives"
        return found[0]

    def location(self, *match: str) -> Directive:
        for d in self.block:
            if d.name == "location" and tuple(d.args[1:]) == match:
                return d
        raise AssertionError(f"no `location {' '.join(match)}` in {CONF.name}")

    def locations(self) -> list[Directive]:
        return [d for d in self.block if d.name == "location"]


_TOKEN = re.compile(r"""#[^\n]*|'[^']*'|"[^"]*"|[{};]|[^\s{};'"#][^\s{};'"]*""")


def parse(text: str) -> Directive:
    """Enough of nginx's grammar for this file: words, quoted strings, comments and blocks."""
    root = Directive(["root"])
    stack: list[Directive] = [root]
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if token.startswith("#"):
            continue
        if token == ";":
            stack[-1].block.append(Directive(words))
        elif token == "{":
            stack[-1].block.append(Directive(words))
            stack.append(stack[-1].block[-1])
        elif token == "}":
            stack.pop()
        else:
            words.append(token[1:-1] if token[0] in "'\"" else token)
            continue
        words = []
    assert len(stack) == 1, "unbalanced braces"
    return root


def tls_server() -> Directive:
    servers = [d for d in parse(CONF.read_text()).block if d.name == "server"]
    named = [
        s
        for s in servers
        if any("ssl" in args for args in s.all("listen")) and s.one("server_name") != ["_"]
    ]
    assert len(named) == 1, "expected one TLS server for the service"
    return named[0]


def size(value: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def seconds(value: str) -> float:
    return float(value[:-1]) * {"s": 1, "m": 60}[value[-1]] if value[-1].isalpha() else float(value)


def nginx_error(server: Directive, name: str) -> dict[str, Any]:
    """The JSON body a named error location returns, with the request id filled in."""
    body = server.location(name).one("return")[1].replace("\\n", "\n")  # nginx's escape
    error: dict[str, Any] = json.loads(body.replace("$steadyvoice_request_id", "rid"))["error"]
    return error


# --- config checks (no processes) -----------------------------------------------------------


def test_body_limits_match_the_service_defaults() -> None:
    server = tls_server()
    json_limit = ApiSettings().max_body_bytes
    upload_limit = VoiceSettings().max_upload_bytes + MULTIPART_OVERHEAD
    assert size(server.one("client_max_body_size")[0]) == json_limit
    for path in ("/v1/voices", "/ui/voices"):  # the API's uploads and the console's form
        uploads = server.location("=", path)
        assert size(uploads.one("client_max_body_size")[0]) == upload_limit, path
        assert ["413", "@reference_too_large"] in uploads.all("error_page"), path
    batch_limit = BatchSettings().max_body_bytes
    for path in ("/v1/batches", "/ui/batches"):
        batches = server.location("=", path)
        assert size(batches.one("client_max_body_size")[0]) == batch_limit, path
        assert ["413", "@batch_too_large"] in batches.all("error_page"), path
    assert nginx_error(server, "@body_too_large")["limit"] == json_limit
    assert nginx_error(server, "@reference_too_large")["limit"] == upload_limit
    assert nginx_error(server, "@batch_too_large")["limit"] == batch_limit


def test_streaming_speech_is_unbuffered_and_waits_as_long_as_a_job() -> None:
    streaming = tls_server().location("=", STREAMING)
    assert streaming.one("proxy_buffering") == ["off"]
    assert streaming.one("gzip") == ["off"]
    read_timeout = seconds(streaming.one("proxy_read_timeout")[0])
    assert read_timeout >= JobSettings().deadline_seconds


def test_metrics_is_only_for_internal_networks() -> None:
    rules = [
        d.args for d in tls_server().location("=", "/metrics").block if d.name in ("allow", "deny")
    ]
    assert rules[-1] == ["deny", "all"], "the last access rule must deny everyone else"
    for verb, source in rules[:-1]:
        assert verb == "allow"
        network = ipaddress.ip_network(source)
        assert network.is_private or network.is_loopback, f"/metrics open to {source}"


def _zones(kind: str) -> dict[str, list[str]]:
    """The ``limit_req_zone`` / ``limit_conn_zone`` directives, by zone name."""
    zones: dict[str, list[str]] = {}
    for args in parse(CONF.read_text()).all(f"{kind}_zone"):
        name = next(a for a in args if a.startswith("zone=")).split("=")[1].split(":")[0]
        zones[name] = args
    return zones


def test_requests_and_connections_are_limited_per_client_address() -> None:
    server = tls_server()
    (req,) = server.all("limit_req")
    zone = req[0].removeprefix("zone=")
    req_zone = _zones("limit_req")[zone]
    assert req_zone[0] == "$binary_remote_addr"
    rate = next(a for a in req_zone if a.startswith("rate=")).removeprefix("rate=")
    assert rate.endswith("r/s")
    # A key's own allowance must pass nginx: the service, not nginx, answers a key over it.
    assert int(rate[:-3]) * 60 >= SecuritySettings().rate_per_minute
    assert "nodelay" in req and int(req[1].removeprefix("burst=")) >= 10
    conn_zone, most = server.one("limit_conn")
    assert _zones("limit_conn")[conn_zone][0] == "$binary_remote_addr"
    assert int(most) >= 8
    assert server.one("limit_req_status") == server.one("limit_conn_status") == ["429"]
    assert nginx_error(server, "@too_many_requests")["code"] == "too_many_requests"
    for location in server.locations():  # one of its own would replace the server's
        assert not location.all("limit_req") and not location.all("limit_conn"), location.args


def test_headers_are_set_once_per_server_never_per_location() -> None:
    """A location with any add_header or proxy_set_header silently drops all the server's ones."""
    server = tls_server()
    headers = {args[0].lower(): args[1] for args in server.all("proxy_set_header")}
    assert headers["x-forwarded-for"] == "$remote_addr"  # overwritten, so never spoofed
    assert headers["x-forwarded-proto"] == "$scheme"
    assert headers["host"] == "$http_host"  # with its port: the console's Origin check needs it
    assert headers["x-request-id"] == "$steadyvoice_request_id"
    assert "authorization" not in headers  # passed on as the client sent it
    server_pages = {code for args in server.all("error_page") for code in args[:-1]}
    for location in server.locations():
        for name in ("add_header", "proxy_set_header", "proxy_hide_header"):
            assert not location.all(name), f"{name} in location {location.args[1:]}"
        pages = {code for args in location.all("error_page") for code in args[:-1]}
        assert not pages or pages >= server_pages, f"location {location.args[1:]} drops pages"


# --- a real nginx in front of a real service ------------------------------------------------


MAIN_CONF = """\
{user}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 512; }}  # limit_conn test: 38 clients + 32 upstream
http {{
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    access_log {prefix}/logs/access.log;
    include {prefix}/steadyvoice.conf;
}}
"""


def nginx_binary() -> str:
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        pytest.fail(
            "nginx is not installed: run `bash scripts/ensure-nginx.sh` "
            "(Debian package `nginx`; `make pytest` runs it)",
            pytrace=False,
        )
    return path


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and 127.0.0.1."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *(
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ),
            *("-nodes", "-days", "2", "-subj", f"/CN={HOST}"),
            *("-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@dataclass(frozen=True)
class Placeholders:
    cert: Path
    key: Path
    upstream: str
    http_port: int
    https_port: int
    log_dir: Path


def render(text: str, values: Placeholders) -> str:
    """The shipped config with its placeholders, and nothing else, substituted."""
    swaps = {
        "/etc/letsencrypt/live/tts.example.com/fullchain.pem": str(values.cert),
        "/etc/letsencrypt/live/tts.example.com/privkey.pem": str(values.key),
        "tts.example.com": HOST,
        "127.0.0.1:7860": values.upstream,
        "/var/log/nginx/": f"{values.log_dir}/",
    }
    for old, new in swaps.items():
        assert old in text, f"placeholder {old!r} is gone from {CONF}: update this test and docs"
        text = text.replace(old, new)
    ports = {"80": values.http_port, "443": values.https_port}

    def listen(m: re.Match[str]) -> str:
        if m["v6"]:  # the test host may have no IPv6; the IPv4 twin stays
            return ""
        return f"{m['indent']}listen 127.0.0.1:{ports[m['port']]}{m['rest']};"

    pattern = r"(?m)^(?P<indent>[ \t]*)listen\s+(?P<v6>\[::\]:)?(?P<port>80|443)\b(?P<rest>[^;]*);"
    text = re.sub(pattern, listen, text)
    assert not re.search(r"listen\s+(?!127\.0\.0\.1:)", text), "a listen the test cannot move"
    return text


@dataclass
class Proxy:
    """nginx running the rendered config, a client that trusts its certificate, and its log."""

    https_port: int
    http_port: int
    tls: ssl.SSLContext
    access_log: Path
    auth: dict[str, str]

    def client(self, **transport: Any) -> httpx.Client:
        return httpx.Client(
            base_url=f"https://{HOST}:{self.https_port}",
            transport=httpx.HTTPTransport(verify=self.tls, **transport),
            timeout=30,
        )

    def logged(self, request_id: str) -> dict[str, Any]:
        """nginx's access log entry for one request."""

        def find() -> dict[str, Any] | None:
            for line in self.access_log.read_text().splitlines():
                try:
                    entry: dict[str, Any] = json.loads(line)
                except json.JSONDecodeError:  # a line nginx is still writing
                    continue
                if entry["request_id"] == request_id:
                    return entry
            return None

        found: dict[str, Any] = poll(find, 10, f"access log entry for {request_id}")
        return found


def start_nginx(prefix: Path, rendered: str) -> tuple[subprocess.Popen[bytes], Path]:
    for sub in ("logs", "temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "steadyvoice.conf").write_text(rendered)
    # As root, nginx would hand its workers to `nobody`, who cannot use the 0700 temp dirs here.
    user = "user root;" if os.geteuid() == 0 else ""
    main = prefix / "nginx.conf"
    main.write_text(MAIN_CONF.format(user=user, prefix=prefix))
    command = [nginx_binary(), "-p", str(prefix), "-e", str(prefix / "logs/error.log")]
    command += ["-c", str(main)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"nginx -t failed:\n{checked.stderr}"
    log = (prefix / "logs" / "nginx.out").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, prefix / "logs"


def stop_nginx(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def proxied(
    tmp_path: Path,
    service_env: Callable[..., dict[str, str]],
    start_service: ServiceFactory,
) -> Iterator[tuple[Proxy, Service]]:
    """A fake-engine service behind nginx running the shipped config."""
    data_dir = tmp_path / "data"
    svc: Service = start_service(service_env(data_dir, ENGINE="fake"))
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    cert, key = make_certificate(prefix)
    http_port = free_port()
    https_port = next(port for port in iter(free_port, None) if port != http_port)
    values = Placeholders(
        cert=cert,
        key=key,
        upstream=svc.url.removeprefix("http://"),
        http_port=http_port,
        https_port=https_port,
        log_dir=prefix / "logs",
    )
    proc, logs = start_nginx(prefix, render(CONF.read_text(), values))
    key_value = admin_key(data_dir)
    proxy = Proxy(
        https_port=values.https_port,
        http_port=values.http_port,
        tls=ssl.create_default_context(cafile=str(cert)),
        access_log=logs / "steadyvoice.access.log",
        auth={"Authorization": f"Bearer {key_value}"} if key_value else {},
    )
    try:
        with proxy.client() as client:

            def up() -> bool:
                if proc.poll() is not None:
                    files = (logs / "nginx.out", logs / "error.log")
                    output = "".join(f.read_text() for f in files if f.exists())
                    raise AssertionError(f"nginx exited:\n{output}")
                try:
                    return client.get("/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            poll(up, 30, "nginx to answer /healthz over TLS")
        yield proxy, svc
    finally:
        stop_nginx(proc)


def check_tls_and_headers(proxy: Proxy, client: httpx.Client) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "nginx-test.health_1"})
    assert r.status_code == 200, r.text
    assert r.http_version == "HTTP/1.1"
    assert r.headers.get_list("strict-transport-security") == ["max-age=63072000"]
    assert r.headers.get_list("x-request-id") == ["nginx-test.health_1"]
    # A request id the service would not take is replaced by nginx's own, which the service uses.
    r = client.get("/v1/jobs/job_missing", headers={"X-Request-ID": "bad id!", **proxy.auth})
    (rid,) = r.headers.get_list("x-request-id")
    assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
    assert r.json()["error"]["request_id"] == rid
    # Host names other than the service's are refused during the handshake (no SNI for an IP).
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{proxy.https_port}/healthz", verify=proxy.tls)


def check_plain_http_redirects(proxy: Proxy) -> None:
    r = httpx.get(f"http://{HOST}:{proxy.http_port}/v1/jobs?limit=5", timeout=10)
    assert r.status_code in (301, 308), r.text
    assert r.headers["location"] == f"https://{HOST}/v1/jobs?limit=5"
    with pytest.raises(httpx.RemoteProtocolError):  # unknown host: connection closed, no answer
        httpx.get(f"http://127.0.0.1:{proxy.http_port}/healthz", timeout=10)


def check_authorization_reaches_the_service(proxy: Proxy, client: httpx.Client) -> None:
    r = client.get("/v1/jobs", headers=proxy.auth)
    assert r.status_code == 200, r.text
    if proxy.auth:  # keys exist: the 200 above needed the header, and without it there is none
        assert client.get("/v1/jobs").status_code == 401
    # A trailing slash is not redirected (a redirect would be built from the Host header); if
    # the service ever redirects again, it must be to this host over https.
    r = client.get("/v1/jobs/", headers=proxy.auth)
    if r.is_redirect:
        assert r.headers["location"] in ("/v1/jobs", f"https://{HOST}/v1/jobs"), r.headers
    else:
        assert r.status_code == 404, r.text


def check_body_limits(proxy: Proxy, client: httpx.Client) -> None:
    json_limit = ApiSettings().max_body_bytes
    body = b'{"text": "' + b"a" * json_limit + b'"}'
    headers = {"Content-Type": "application/json", "X-Request-ID": "nginx-test-json", **proxy.auth}
    r = client.post("/v1/jobs", content=body, headers=headers)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "body_too_large"
    assert r.json()["error"]["request_id"] == "nginx-test-json"
    assert proxy.logged("nginx-test-json")["upstream_status"] == "", "the service saw the body"

    # A recording exactly at the service's limit gets through nginx; the service then answers
    # (here: unreadable audio, or 401 if it wants a key), whatever it is, it is not nginx's 413.
    at_limit = upload(proxy, client, VoiceSettings().max_upload_bytes, "nginx-test-upload")
    reached = proxy.logged("nginx-test-upload")["upstream_status"]
    assert at_limit.status_code != 413, at_limit.text
    assert reached == str(at_limit.status_code), reached
    # Past the service's ceiling (recording plus multipart allowance): refused by nginx.
    too_big = upload(proxy, client, VoiceSettings().max_upload_bytes + MULTIPART_OVERHEAD, "big")
    assert too_big.status_code == 413, too_big.text
    assert too_big.json()["error"]["code"] == "reference_too_large"
    assert proxy.logged("big")["upstream_status"] == "", "the service saw the upload"


def upload(proxy: Proxy, client: httpx.Client, audio_bytes: int, rid: str) -> httpx.Response:
    form = {"name": "Limit", "consent": "A test upload at the edge of the service's limit."}
    files = {"audio": ("ref.wav", b"\0" * audio_bytes, "audio/wav")}
    return client.post(
        "/v1/voices", data=form, files=files, headers={"X-Request-ID": rid, **proxy.auth}
    )


def check_metrics_only_from_inside(proxy: Proxy, client: httpx.Client) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200 and "steadyvoice_" in r.text, r.text[:300]
    # 127.0.0.2 is loopback too, but not in the allow list: it stands in for the internet.
    with proxy.client(local_address="127.0.0.2") as outside:
        assert outside.get("/metrics").status_code == 403
        assert outside.get("/healthz").status_code == 200


def check_client_address_reaches_the_service(proxy: Proxy, client: httpx.Client) -> None:
    """The audit log records the address nginx saw (X-Forwarded-For), not nginx's own."""
    if not proxy.auth:  # no API keys yet, so no audit log to read the address from
        return
    with proxy.client(local_address="127.0.0.2") as outside:
        headers = {"X-Request-ID": "nginx-test-forwarded", **proxy.auth}
        r = outside.post("/v1/jobs", json={"text": "From outside."}, headers=headers)
        assert r.status_code == 202, r.text

    def audited() -> dict[str, Any] | None:
        page = client.get("/v1/audit", params={"limit": 50}, headers=proxy.auth)
        assert page.status_code == 200, page.text
        items: list[dict[str, Any]] = page.json()["items"]
        return next((i for i in items if i["request_id"] == "nginx-test-forwarded"), None)

    entry: dict[str, Any] = poll(audited, 10, "the audit entry of the call from 127.0.0.2")
    assert entry["client"] == "127.0.0.2", entry


def check_audio_download(proxy: Proxy, client: httpx.Client) -> None:
    r = client.post(
        "/v1/jobs", json={"text": "Hello through the proxy.", "seed": 3}, headers=proxy.auth
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=proxy.auth).json()
        return job if job["status"] in ("succeeded", "failed", "canceled") else None

    job = poll(finished, 60, f"job {job_id}")
    assert job["status"] == "succeeded", job
    audio = client.get(f"/v1/jobs/{job_id}/audio", headers=proxy.auth)
    assert audio.status_code == 200
    assert hashlib.sha256(audio.content).hexdigest() == job["output"]["sha256"]
    assert audio.headers["x-content-sha256"] == job["output"]["sha256"]


def check_a_burst_is_refused_by_nginx(proxy: Proxy) -> None:
    """Past the burst, one address gets nginx's 429 (JSON, Retry-After) without reaching the
    service; another address is not affected."""
    answers: list[httpx.Response] = []
    with proxy.client(local_address="127.0.0.3") as burst:
        for i in range(1000):
            r = burst.get("/healthz", headers={"X-Request-ID": f"nginx-test-burst-{i}"})
            answers.append(r)
            if r.status_code == 429:
                break
    assert [r.status_code for r in answers[:100]] == [200] * 100  # the burst allowance
    refused = answers[-1]
    assert refused.status_code == 429, "1000 requests at once were never limited"
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert refused.headers.get_list("retry-after") == ["1"]
    assert refused.headers.get_list("strict-transport-security") == ["max-age=63072000"]
    rid = refused.headers["x-request-id"]
    assert proxy.logged(rid)["upstream_status"] == "", "the service saw the refused request"
    with proxy.client(local_address="127.0.0.5") as other:
        ok = other.get("/healthz")
        assert ok.status_code == 200 and "retry-after" not in ok.headers


def check_connections_are_limited_by_nginx(proxy: Proxy, svc: Service) -> None:
    """With the service frozen, one address's requests in flight stop at limit_conn: the rest
    get 429 at once; the held ones are answered once the service runs again."""
    limit = int(tls_server().one("limit_conn")[1])
    extra = 6
    assert svc.proc is not None
    refused = threading.Semaphore(0)
    with proxy.client(local_address="127.0.0.4", limits=httpx.Limits(max_connections=100)) as c:

        def call(i: int) -> int:
            status = c.get("/healthz", headers={"X-Request-ID": f"nginx-test-conn-{i}"}).status_code
            if status == 429:
                refused.release()
            return status

        svc.proc.send_signal(signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(max_workers=limit + extra) as pool:
                calls = [pool.submit(call, i) for i in range(limit + extra)]
                for _ in range(extra):
                    assert refused.acquire(timeout=20), "no 429 for connections over the limit"
                assert sum(f.done() for f in calls) == extra  # the others are held upstream
                svc.proc.send_signal(signal.SIGCONT)
                statuses = sorted(f.result(timeout=60) for f in calls)
        finally:
            svc.proc.send_signal(signal.SIGCONT)
    assert statuses == [200] * limit + [429] * extra


def check_service_down_is_a_json_error(client: httpx.Client, svc: Service) -> None:
    svc.stop()
    r = client.get("/healthz")
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_unavailable"


@pytest.mark.timeout(180)
def test_nginx_in_front_of_the_service(proxied: tuple[Proxy, Service]) -> None:
    proxy, svc = proxied
    with proxy.client() as client:
        check_tls_and_headers(proxy, client)
        check_plain_http_redirects(proxy)
        check_authorization_reaches_the_service(proxy, client)
        check_body_limits(proxy, client)
        check_metrics_only_from_inside(proxy, client)
        check_client_address_reaches_the_service(proxy, client)
        check_audio_download(proxy, client)
        check_a_burst_is_refused_by_nginx(proxy)
        check_connections_are_limited_by_nginx(proxy, svc)
        check_service_down_is_a_json_error(client, svc)
