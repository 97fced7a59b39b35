"""Against real `assay serve` processes: a rate limit shared by every process through
Redis, the server's own limits on request heads and bodies, and the headers of the
answers the server writes itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.rate_window import wait_for_steady_rate_window

ASSAY = str(Path(sys.executable).parent / "assay")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    # A TCP connect, not an HTTP request: probes would spend the rate-limit budget.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"assay serve exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"assay serve did not listen on {port} within 60 s")


def _serve(tmp_path: Path, name: str, **settings: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(
        ASSAY_ENV="test",
        ASSAY_DATA_DIR=str(tmp_path / name),
        ASSAY_PORT=str(port),
        ASSAY_METRICS_PORT="0",
        ASSAY_LOG_LEVEL="WARNING",
        **settings,
    )
    log = (tmp_path / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [ASSAY, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    _wait_until_listening(process, port)
    return process, port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.redis
def test_a_limit_is_global_across_server_processes_sharing_redis(
    tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    shared = {
        "ASSAY_REDIS_URL": redis_url,
        "ASSAY_RATE_LIMIT_NAMESPACE": redis_namespace,
        "ASSAY_RATE_LIMIT_DEFAULT": "5/minute",
    }
    first, first_port = _serve(tmp_path, "first", **shared)
    try:
        second, second_port = _serve(tmp_path, "second", **shared)
        try:
            # The docs page: anonymous, charged to the default class by address (the
            # probes are exempt from limits). Starting two servers takes seconds, so
            # the count starts inside one window only now.
            wait_for_steady_rate_window()
            ports = [first_port, second_port, first_port, second_port, first_port]
            answers = [httpx.get(f"http://127.0.0.1:{port}/docs", timeout=10) for port in ports]
            sixth = httpx.get(f"http://127.0.0.1:{second_port}/docs", timeout=10)
            seventh = httpx.get(f"http://127.0.0.1:{first_port}/docs", timeout=10)
        finally:
            _stop(second)
    finally:
        _stop(first)
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["4", "3", "2", "1", "0"]
    assert sixth.status_code == 429
    assert seventh.status_code == 429
    assert int(sixth.headers["retry-after"]) >= 1
    assert sixth.headers["content-type"] == "application/problem+json"


@pytest.fixture(scope="module")
def head_limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp_path = tmp_path_factory.mktemp("head-limits")
    process, port = _serve(
        tmp_path,
        "server",
        ASSAY_MAX_HEADER_BYTES="4096",
        ASSAY_HEADER_READ_TIMEOUT_SECONDS="1",
        ASSAY_BODY_READ_TIMEOUT_SECONDS="1",
        ASSAY_RATE_LIMIT_DEFAULT="1000/minute",
        ASSAY_RATE_LIMIT_AUTH_PER_ADDRESS="1000/minute",
    )
    try:
        yield port
    finally:
        _stop(process)


def _exchange(port: int, data: bytes, *, drip: list[bytes] | None = None) -> bytes:
    """Send `data` (then each of `drip` half a second apart), then read until the server
    closes (or 15 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        if data:
            sock.sendall(data)
        for chunk in drip or ():
            time.sleep(0.5)
            sock.sendall(chunk)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            if b"\r\n\r\n" in received and b"connection: close" not in received.lower():
                break  # a normal keep-alive answer
    return received


@pytest.mark.slow
def test_a_request_head_within_the_limit_is_served(head_limited_server: int) -> None:
    head = b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Fill: " + b"a" * 3000 + b"\r\n\r\n"
    assert _exchange(head_limited_server, head).startswith(b"HTTP/1.1 200")


@pytest.mark.slow
def test_an_oversized_request_head_gets_431(head_limited_server: int) -> None:
    head = b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Fill: " + b"a" * 8000 + b"\r\n\r\n"
    answer = _exchange(head_limited_server, head)
    assert answer.startswith(b"HTTP/1.1 431")
    assert b"application/problem+json" in answer


@pytest.mark.slow
def test_an_endless_header_line_gets_431(head_limited_server: int) -> None:
    head = b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Fill: " + b"a" * 8000  # never ends
    assert _exchange(head_limited_server, head).startswith(b"HTTP/1.1 431")


@pytest.mark.slow
def test_a_head_that_never_completes_is_cut_off(head_limited_server: int) -> None:
    answer = _exchange(head_limited_server, b"GET /livez HTTP/1.1\r\nHost: t\r\n")
    assert answer.startswith(b"HTTP/1.1 408")


@pytest.mark.slow
def test_a_connection_that_sends_nothing_is_closed(head_limited_server: int) -> None:
    assert _exchange(head_limited_server, b"").startswith(b"HTTP/1.1 408")


def _head_of(answer: bytes) -> dict[str, str]:
    """The header fields of a raw HTTP answer, names lower-cased."""
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {name.strip().lower(): value.strip() for name, value in (h.split(":", 1) for h in head)}


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
        "object-src 'none'"
    ),
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def _assert_ours(answer: bytes, status: bytes) -> dict[str, str]:
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    headers = _head_of(answer)
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, headers)
    assert "server" not in headers
    return headers


LOGIN = b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"


@pytest.mark.slow
def test_a_stalled_body_gets_408(head_limited_server: int) -> None:
    started = time.monotonic()
    answer = _exchange(head_limited_server, LOGIN + b"Content-Length: 100\r\n\r\n{")
    elapsed = time.monotonic() - started
    headers = _assert_ours(answer, b"408")
    assert headers["content-type"] == "application/problem+json"
    assert b"urn:assay:problem:request-timeout" in answer
    assert b"body stopped arriving" in answer
    assert elapsed < 10


@pytest.mark.slow
def test_a_slow_but_steady_body_is_not_cut_off(head_limited_server: int) -> None:
    # Four chunks half a second apart: two seconds in all, never a second's silence.
    body = b'{"email": "nobody@example.org", "password": "not-the-password-0"}'
    chunks = [body[i : i + 17] for i in range(0, len(body), 17)]
    answer = _exchange(
        head_limited_server,
        LOGIN + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n",
        drip=chunks,
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


@pytest.mark.slow
def test_a_stalled_body_after_the_answer_just_closes(head_limited_server: int) -> None:
    # Nothing reads this body: the 404 goes out at once, and the connection is closed
    # when the rest never comes, without a second answer.
    answer = _exchange(
        head_limited_server, b"POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\nx"
    )
    assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1


@pytest.mark.slow
def test_answers_the_server_writes_itself_carry_the_security_headers(
    head_limited_server: int,
) -> None:
    too_large = _exchange(
        head_limited_server,
        b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Fill: " + b"a" * 8000 + b"\r\n\r\n",
    )
    timed_out = _exchange(head_limited_server, b"GET /livez HTTP/1.1\r\nHost: t\r\n")
    invalid = _exchange(head_limited_server, b"NOT HTTP AT ALL\r\n\r\n")
    _assert_ours(too_large, b"431")
    _assert_ours(timed_out, b"408")
    headers = _assert_ours(invalid, b"400")
    assert headers["content-type"] == "application/problem+json"
    assert b"urn:assay:problem:bad-request" in invalid


@pytest.mark.slow
def test_no_answer_names_the_server_software(head_limited_server: int) -> None:
    base = f"http://127.0.0.1:{head_limited_server}"
    with httpx.Client(base_url=base, timeout=10) as client:
        answers = [
            client.get("/livez"),
            client.head("/readyz"),
            client.get("/nowhere"),
            client.get("/docs"),
            client.get("/openapi.json"),
            client.post("/v1/auth/login", json={}),
            client.get("/v1/me"),
        ]
    assert [a.status_code for a in answers] == [200, 200, 404, 200, 200, 422, 401]
    for answer in answers:
        assert "server" not in answer.headers, answer.request.url
        assert "x-powered-by" not in answer.headers, answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.slow
def test_past_max_concurrency_the_answer_is_a_503_problem(tmp_path: Path) -> None:
    process, port = _serve(tmp_path, "busy", ASSAY_MAX_CONCURRENCY="2")
    try:
        # An open connection counts: with it held, the next request is one too many.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
            held.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
            assert held.recv(65536).startswith(b"HTTP/1.1 200")
            answer = _exchange(port, b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
    finally:
        _stop(process)
    headers = _assert_ours(answer, b"503")
    assert headers["content-type"] == "application/problem+json"
    assert headers["retry-after"] == "1"
    assert headers["connection"] == "close"
    assert b"urn:assay:problem:service-unavailable" in answer
