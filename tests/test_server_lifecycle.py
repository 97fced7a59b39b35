"""The real server process: graceful SIGTERM, the metrics listener, Sentry reporting.

Each test starts a server on a fresh PostgreSQL database, configured only through
ASSAY_* environment variables: tests/support/server_with_test_routes.py (one process,
with test-only routes), or the real `assay serve` with several workers.
"""

from __future__ import annotations

import asyncio
import glob
import gzip
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from assay import __version__
from assay.accounts import service as accounts
from assay.app import create_app
from assay.audit.service import CLI
from assay.core.logging import REDACTED
from assay.core.principal import PLATFORM
from assay.http.problems import PROBLEM_CONTENT_TYPE
from assay.orgs import service as orgs
from assay.settings import Settings
from tests.conftest import (
    KNOWN_SECRETS,
    PG_ADMIN_DSN,
    make_database_url,
    new_secret,
    require_service,
)
from tests.support.identity import strong_password
from tests.support.processes import (
    ServerProcess,
    free_port,
    refused,
    spawn,
    wait_until_ready,
)

pytestmark = pytest.mark.slow

SERVER_SCRIPT = Path(__file__).parent / "support" / "server_with_test_routes.py"
ASSAY = str(Path(sys.executable).parent / "assay")
WORKERS = 2
BATCH = 20
PER_WORKER = 5
START_TIMEOUT = 30.0
GRACE_SECONDS = 10
CONCURRENT_REQUESTS = 20


StartServer = Callable[..., Awaitable[ServerProcess]]


def _spawn(
    env: dict[str, str], *, cwd: Path, log_path: Path, command: list[str] | None = None
) -> subprocess.Popen[bytes]:
    return spawn(command or [sys.executable, str(SERVER_SCRIPT)], env, cwd=cwd, log_path=log_path)


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    require_service("postgresql")
    url, drop = await make_database_url("postgresql", tmp_path)
    assert drop is not None
    try:
        yield url
    finally:
        await drop()


@pytest.fixture
def start_server(tmp_path: Path, postgres_url: str) -> Iterator[StartServer]:
    """Start the server subprocess; whatever happens, it is killed at teardown."""
    started: list[ServerProcess] = []

    async def start(*, command: list[str] | None = None, **extra_env: str) -> ServerProcess:
        port, metrics_port = free_port(), free_port()
        application_name = f"assay-lifecycle-{uuid.uuid4().hex[:12]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
        env.update(
            ASSAY_ENV="test",
            ASSAY_DATA_DIR=str(tmp_path / "data"),
            ASSAY_DATABASE_URL=postgres_url,
            ASSAY_PORT=str(port),
            ASSAY_METRICS_PORT=str(metrics_port),
            ASSAY_DB_APPLICATION_NAME=application_name,
            ASSAY_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
            ASSAY_LOG_FORMAT="json",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env)
        log_path = tmp_path / f"server-{len(started)}.log"
        process = _spawn(env, cwd=tmp_path, log_path=log_path, command=command)
        server = ServerProcess(process, port, metrics_port, application_name, log_path)
        started.append(server)
        await wait_until_ready(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()


async def _connections_named(application_name: str) -> int:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            application_name,
        )
    finally:
        await conn.close()
    return int(count)


async def _scrape(server: ServerProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Scrape the metrics listener: sample name -> [(labels, value), ...]."""
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(server.metrics_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


async def _in_flight(server: ServerProcess) -> float:
    return sum(value for _, value in (await _scrape(server))["assay_http_requests_in_flight"])


# --- graceful shutdown -------------------------------------------------------------------


async def test_sigterm_under_load_finishes_every_in_flight_request(
    start_server: StartServer,
) -> None:
    server = await start_server()
    finished_at: list[float] = []

    async def slow_request(http: httpx.AsyncClient) -> httpx.Response:
        response = await http.get("/test/slow", params={"seconds": 1})
        finished_at.append(time.monotonic())
        return response

    limits = httpx.Limits(max_connections=CONCURRENT_REQUESTS * 2)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as http:
        tasks = [asyncio.create_task(slow_request(http)) for _ in range(CONCURRENT_REQUESTS)]
        await asyncio.sleep(0.3)
        # Every request must really be in the server's hands before the signal.
        deadline = time.monotonic() + 5
        while await _in_flight(server) < CONCURRENT_REQUESTS:
            assert time.monotonic() < deadline, "the requests never all reached the handler"
            await asyncio.sleep(0.02)
        assert await _connections_named(server.application_name) > 0

        server.sigterm()
        signalled_at = time.monotonic()

        # While the requests drain, the listening socket is already closed.
        refused_while_draining = False
        while not finished_at and time.monotonic() - signalled_at < 1.5:
            if await refused(server.port):
                refused_while_draining = not finished_at
                break
            await asyncio.sleep(0.05)

        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)

    failures = [r for r in results if not isinstance(r, httpx.Response) or r.status_code != 200]
    assert failures == [], f"in-flight requests were lost: {failures}\n{server.log()}"
    assert len(results) == CONCURRENT_REQUESTS
    for response in results:
        assert isinstance(response, httpx.Response)
        assert response.json() == {"slept": 1.0, "db": 1}
    assert all(t > signalled_at for t in finished_at), "the SIGTERM came after the responses"
    assert refused_while_draining, "new connections were still accepted after SIGTERM"

    assert await server.wait_exit() == 0, server.log()
    assert time.monotonic() - signalled_at < GRACE_SECONDS
    assert await refused(server.port)

    # The lifespan shutdown disposed of the pool: no session is left behind.
    deadline = time.monotonic() + 5
    while (remaining := await _connections_named(server.application_name)) > 0:
        assert time.monotonic() < deadline, f"{remaining} connection(s) left open"
        await asyncio.sleep(0.1)
    assert remaining == 0
    log = server.log()
    assert '"event": "stopped"' in log, log


# --- metrics -----------------------------------------------------------------------------


async def test_metrics_listener_serves_prometheus_text_and_main_port_needs_a_principal(
    start_server: StartServer,
) -> None:
    server = await start_server(ASSAY_DB_POOL_SIZE="7")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        slow = await http.get("/test/slow", params={"seconds": 0})
        on_main_port = await http.get("/metrics")
    assert slow.status_code == 200
    # The main port serves /metrics only to a principal holding system:read.
    assert on_main_port.status_code == 401
    assert "assay_http_requests_total" not in on_main_port.text

    samples = await _scrape(server)
    requests_total = samples["assay_http_requests_total"]
    assert ({"route": "/test/slow", "method": "GET", "status": "200"}, 1.0) in requests_total
    # The raw path never becomes a label value, and /readyz was counted under its route.
    assert all("?" not in labels["route"] for labels, _ in requests_total)
    assert any(labels["route"] == "/readyz" for labels, _ in requests_total)

    assert samples["assay_db_pool_size"] == [({"dialect": "postgresql"}, 7.0)]
    assert samples["assay_db_pool_checked_out"] == [({"dialect": "postgresql"}, 0.0)]
    build = samples["assay_build_info"]
    assert len(build) == 1
    assert build[0][0]["version"] == __version__
    assert build[0][1] == 1.0
    assert samples["assay_http_requests_in_flight"] == [({}, 0.0)]

    server.sigterm()
    assert await server.wait_exit() == 0, server.log()
    assert await refused(server.metrics_port), "the metrics listener outlived the server"


# --- Sentry ------------------------------------------------------------------------------


@dataclass
class SentryReceiver:
    """A stand-in Sentry ingest endpoint: records every POSTed body, decompressed."""

    bodies: list[bytes] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def texts(self) -> list[str]:
        return [body.decode("utf-8", errors="replace") for body in self.bodies]


def _decode(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found]

        return bytes(brotli.decompress(body))
    assert encoding in {"", "identity"}, f"unexpected Content-Encoding {encoding!r}"
    return body


@pytest.fixture
def sentry_receiver() -> Iterator[SentryReceiver]:
    receiver = SentryReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = _decode(raw, self.headers.get("Content-Encoding", ""))
            with lock:
                receiver.bodies.append(body)
            reply = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        thread.join(timeout=5)


def _exception_events(envelope: str) -> list[dict[str, Any]]:
    """The error events in one envelope (header line, then item header/payload pairs)."""
    events = []
    for line in envelope.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "exception" in item:
            events.append(item)
    return events


async def test_unhandled_error_reaches_sentry_without_credentials_or_locals(
    start_server: StartServer, sentry_receiver: SentryReceiver
) -> None:
    local_secret = new_secret()
    bearer_token = new_secret()
    cookie_value = new_secret()
    request_id = f"lifecycle-{secrets.token_hex(8)}"
    server = await start_server(
        ASSAY_SENTRY_DSN=f"http://publickey@127.0.0.1:{sentry_receiver.port}/1",
        TEST_BOOM_SECRET=local_secret,
    )

    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        response = await http.get(
            "/test/boom",
            headers={
                "Authorization": f"Bearer {bearer_token}",
                "Cookie": f"session={cookie_value}",
                "X-Request-ID": request_id,
            },
        )

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["request_id"] == request_id == response.headers["x-request-id"]
    assert body["status"] == 500
    for internal in ("Traceback", "RuntimeError", "test boom", "server_with_test_routes"):
        assert internal not in response.text

    server.sigterm()  # the lifespan shutdown flushes the Sentry transport
    assert await server.wait_exit() == 0, server.log()

    arrived = "\n".join(sentry_receiver.texts())
    events = [event for text in sentry_receiver.texts() for event in _exception_events(text)]
    assert events, f"no error event reached the Sentry endpoint; got: {arrived[:2000]}"
    booms = [
        (event, value)
        for event in events
        for value in event["exception"]["values"]
        if value.get("type") == "RuntimeError"
    ]
    assert booms, f"no RuntimeError among the events: {arrived[:2000]}"
    event, boom = booms[0]
    assert "test boom: deliberate failure" in boom["value"]
    frames = boom.get("stacktrace", {}).get("frames", [])
    assert frames, "the event carries no stack trace"
    assert all("vars" not in frame for frame in frames), "local variables were sent"
    # The request was described, and went through our scrubber (before_send) on the way.
    request = event["request"]
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["x-request-id"] == request_id
    assert headers["authorization"] == REDACTED
    assert headers["cookie"] == REDACTED
    assert "cookies" not in request
    assert "data" not in request

    for secret, what in (
        (bearer_token, "bearer token"),
        (cookie_value, "cookie value"),
        (local_secret, "local variable holding a secret"),
    ):
        assert secret not in arrived, f"the {what} reached Sentry"
        assert secret not in server.log(), f"the {what} reached the server log"


# --- `assay serve` with several workers --------------------------------------------------


def _metrics_directory(server: ServerProcess) -> Path:
    """The directory `assay serve` shared with its workers, from its own log line."""
    for line in server.log().splitlines():
        if line.startswith("{") and '"metrics_shared"' in line:
            return Path(json.loads(line)["directory"])
    pytest.fail(f"assay serve did not log its metrics directory:\n{server.log()}")


def _requests_by_worker(directory: Path, route: str) -> dict[int, float]:
    """assay_http_requests_total for `route`, read from each worker's own file."""
    counts: dict[int, float] = {}
    for path in glob.glob(str(directory / "counter_*.db")):
        pid = int(Path(path).stem.split("_")[1])
        for metric in MultiProcessCollector.merge([path], accumulate=False):
            for sample in metric.samples:
                if sample.name == "assay_http_requests_total" and sample.labels["route"] == route:
                    counts[pid] = counts.get(pid, 0.0) + sample.value
    return counts


async def _until_logged(server: ServerProcess, text: str, times: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while server.log().count(text) < times:
        assert time.monotonic() < deadline, f"{text!r} not logged {times} times:\n{server.log()}"
        await asyncio.sleep(0.05)


async def _worker_pids(directory: Path) -> list[int]:
    """Every worker writes its in-flight gauge file as soon as it imports Assay."""
    deadline = time.monotonic() + 10
    while True:
        pids = sorted(
            int(Path(path).stem.rsplit("_", 1)[1])
            for path in glob.glob(str(directory / "gauge_livesum_*.db"))
        )
        if len(pids) == WORKERS:
            return pids
        assert time.monotonic() < deadline, f"workers seen: {pids}"
        await asyncio.sleep(0.05)


def _total(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for found, v in samples if all(found.get(k) == x for k, x in labels.items()))


async def test_two_workers_report_every_request_through_one_listener(
    start_server: StartServer,
) -> None:
    server = await start_server(
        command=[ASSAY, "serve", "--workers", str(WORKERS)], ASSAY_DB_POOL_SIZE="7"
    )
    directory = _metrics_directory(server)
    await _until_logged(server, '"event": "started"', WORKERS)  # every worker serves
    workers = await _worker_pids(directory)
    sent = 0
    # New connections, so each request goes to whichever worker accepts it. To be sure
    # every worker answers some, the others are paused (SIGSTOP) for a few requests in
    # turn: a paused worker accepts nothing, and holds nothing, as all requests are done.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10, limits=limits) as http:
        answers = await asyncio.gather(*(http.get("/livez") for _ in range(BATCH)))
        assert [a.status_code for a in answers] == [200] * BATCH
        sent += BATCH
        for worker in workers:
            others = [pid for pid in workers if pid != worker]
            for pid in others:
                os.kill(pid, signal.SIGSTOP)
            try:
                for _ in range(PER_WORKER):
                    assert (await http.get("/livez")).status_code == 200
                    sent += 1
            finally:
                for pid in others:
                    os.kill(pid, signal.SIGCONT)

    by_worker = _requests_by_worker(directory, "/livez")
    assert sorted(by_worker) == workers
    assert all(count >= PER_WORKER for count in by_worker.values()), by_worker
    assert sum(by_worker.values()) == sent

    samples = await _scrape(server)
    # Each worker's share alone would be less: the listener adds up every worker.
    assert _total(samples["assay_http_requests_total"], route="/livez") == sent
    assert _total(samples["assay_http_request_duration_seconds_count"], route="/livez") == sent
    assert samples["assay_http_requests_in_flight"] == [({}, 0.0)]
    assert samples["assay_db_pool_size"] == [({"dialect": "postgresql"}, 7.0 * WORKERS)]
    build = samples["assay_build_info"]
    assert len(build) == 1
    assert build[0][0]["version"] == __version__

    server.sigterm()
    assert await server.wait_exit() == 0, server.log()
    assert await refused(server.metrics_port), "the metrics listener outlived the server"
    assert not directory.exists(), "the shared metrics directory was left behind"


@dataclass
class HeldRequest:
    """A request whose head and part of its body were sent; the rest is held back."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    rest: bytes


async def _start_login(port: int, email: str, password: str) -> HeldRequest:
    body = json.dumps({"email": email, "password": password}).encode()
    # Cut inside the password: the server cannot answer before the rest arrives.
    cut = body.index(password.encode()) + len(password) // 2
    head = (
        "POST /v1/auth/login HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body[:cut])
    await writer.drain()
    return HeldRequest(reader, writer, body[cut:])


async def _finish(held: HeldRequest) -> tuple[int, dict[str, Any]]:
    held.writer.write(held.rest)
    await held.writer.drain()
    raw = await asyncio.wait_for(held.reader.read(), 30)
    held.writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    answer: dict[str, Any] = json.loads(body) if body else {}
    for key in ("access_token", "refresh_token"):
        if key in answer:
            KNOWN_SECRETS.add(answer[key])
    return status, answer


async def _make_owner(settings: Settings) -> tuple[str, str]:
    """An organisation owner, made through the services, on the database the server uses."""
    app = create_app(settings)
    email, password = f"owner-{uuid.uuid4().hex[:8]}@example.org", strong_password()
    async with app.router.lifespan_context(app), app.state.database.sessionmaker() as db:
        user = await accounts.create_user(db, app.state.identity, email=email, password=password)
        org = await orgs.create_organisation(db, CLI, PLATFORM, name="Drained", slug=None)
        await orgs.add_member(db, CLI, PLATFORM, org.id, user, "owner")
        await db.commit()
    return email, password


async def _sessions_of(database_url: str, email: str) -> int:
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM auth_sessions s JOIN users u ON u.id = s.user_id "
            "WHERE u.email = $1",
            email,
        )
    finally:
        await conn.close()
    return int(count)


async def test_sigterm_to_assay_serve_with_workers_completes_in_flight_writes(
    start_server: StartServer,
    settings_factory: Any,
    postgres_url: str,
) -> None:
    settings: Settings = settings_factory(database_url=postgres_url)
    email, password = await _make_owner(settings)
    secrets_env = {
        f"ASSAY_{name.upper()}": getattr(settings, name).get_secret_value()
        for name in ("token_signing_key", "session_secret", "encryption_key")
    }
    server = await start_server(
        command=[ASSAY, "serve", "--workers", str(WORKERS)],
        ASSAY_ARGON2_MEMORY_KIB=str(settings.argon2_memory_kib),
        ASSAY_ARGON2_TIME_COST=str(settings.argon2_time_cost),
        ASSAY_RATE_LIMIT_AUTH_PER_ADDRESS="100000/minute",
        ASSAY_RATE_LIMIT_AUTH_PER_ACCOUNT="100000/minute",
        **secrets_env,
    )

    await _until_logged(server, '"event": "started"', WORKERS)
    held = [await _start_login(server.port, email, password) for _ in range(CONCURRENT_REQUESTS)]
    # Every login is inside a worker, waiting for the rest of its body.
    deadline = time.monotonic() + 10
    while await _in_flight(server) < CONCURRENT_REQUESTS:
        assert time.monotonic() < deadline, f"the logins never all started:\n{server.log()}"
        await asyncio.sleep(0.05)

    server.sigterm()
    # Both workers have begun their graceful shutdown before any body is complete.
    await _until_logged(server, "Shutting down", WORKERS)
    assert await _sessions_of(postgres_url, email) == 0

    results = await asyncio.gather(*(_finish(request) for request in held))

    assert [status for status, _ in results] == [200] * CONCURRENT_REQUESTS, server.log()
    assert all("access_token" in answer for _, answer in results)
    assert await server.wait_exit() == 0, server.log()
    # Every sign-in was written, and the pools were closed behind them.
    assert await _sessions_of(postgres_url, email) == CONCURRENT_REQUESTS
    deadline = time.monotonic() + 5
    while (remaining := await _connections_named(server.application_name)) > 0:
        assert time.monotonic() < deadline, f"{remaining} connection(s) left open"
        await asyncio.sleep(0.1)
    assert server.log().count('"event": "stopped"') == WORKERS
