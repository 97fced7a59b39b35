"""The client's parts without a server: problem mapping, the SSE parser, signing (against
the server's own verifier helpers), the tensor helper, and reconnection limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from assay_client import (
    AssayError,
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    ModelUnavailable,
    NotFound,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    ValidationFailed,
    rows_to_inputs,
)
from assay_client import signing as client_signing
from assay_client._sse import SSEDecoder
from assay_client.errors import retry_after_seconds

from assay.client import signing as server_signing
from assay.core.errors import error_catalogue

BASE = "http://assay.test"


def _problem(status: int, slug: str, **members: object) -> httpx.Response:
    body = {
        "type": f"urn:assay:problem:{slug}",
        "title": slug.replace("-", " ").capitalize(),
        "status": status,
        "detail": f"detail of {slug}",
        "instance": "/v1/x",
        "request_id": "r-1",
        **members,
    }
    return httpx.Response(
        status, content=json.dumps(body), headers={"content-type": "application/problem+json"}
    )


def _answering(response: httpx.Response) -> Client:
    return Client(BASE, api_key="k", transport=httpx.MockTransport(lambda _: response))


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (_problem(400, "bad-request"), BadRequest),
        (_problem(404, "not-found"), NotFound),
        (_problem(409, "conflict"), Conflict),
        (_problem(422, "validation-failed"), ValidationFailed),
        (_problem(503, "model-unavailable"), ModelUnavailable),
        (_problem(503, "service-unavailable"), ServiceUnavailable),
        # An unknown type falls back to its status; an unknown status to the base classes.
        (_problem(404, "something-new"), NotFound),
        (_problem(418, "teapot"), AssayError),
        (httpx.Response(502, text="<html>bad gateway</html>"), ServerError),
    ],
)
def test_problems_map_to_exception_classes(
    response: httpx.Response, expected: type[AssayError]
) -> None:
    with _answering(response) as assay, pytest.raises(AssayError) as raised:
        assay.list_models()
    assert type(raised.value) is expected
    assert raised.value.status == response.status_code


def test_a_problem_keeps_every_member() -> None:
    errors = [{"field": "records.0.amount", "code": "minimum", "message": "must be at least 0"}]
    response = _problem(422, "validation-failed", errors=errors, extra_member=1)
    with _answering(response) as assay, pytest.raises(ValidationFailed) as raised:
        assay.predict("m", {"amount": -1})
    problem = raised.value
    assert problem.type == "urn:assay:problem:validation-failed"
    assert problem.detail == "detail of validation-failed"
    assert problem.request_id == "r-1"
    assert problem.instance == "/v1/x"
    assert [(e.field, e.code) for e in problem.errors] == [("records.0.amount", "minimum")]
    assert problem.problem["extra_member"] == 1
    assert "records.0.amount: must be at least 0" in str(problem)


def test_every_server_problem_type_has_a_client_class() -> None:
    import assay.app

    for cls in error_catalogue():
        if cls.slug == "internal-error":
            continue
        response = _problem(cls.status, cls.slug)
        with _answering(response) as assay, pytest.raises(AssayError) as raised:
            assay.list_models()
        assert type(raised.value) is not AssayError, cls.slug
        assert raised.value.status == cls.status


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    limited = _problem(429, "rate-limited")
    limited.headers["retry-after"] = "7"
    with _answering(limited) as assay, pytest.raises(RateLimited) as raised:
        assay.list_models()
    assert raised.value.retry_after == 7.0
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("not a date") is None
    assert retry_after_seconds(None) is None


def test_credentials_are_exactly_one_of_key_and_token() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Client(BASE)
    with pytest.raises(ValueError, match="exactly one"):
        Client(BASE, api_key="k", token="t")
    with pytest.raises(ValueError, match="signing_secret"):
        Client(BASE, token="t", signing_secret="s")
    with pytest.raises(ValueError, match="not an Assay API key"):
        Client(BASE, api_key="plain", signing_secret="c2VjcmV0")


def test_headers_carry_the_credentials() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    with Client(BASE, api_key="k", transport=httpx.MockTransport(answer)) as keyed:
        keyed.list_models()
    with Client(BASE, token="t", transport=httpx.MockTransport(answer)) as bearer:
        bearer.list_models()
    assert seen[0].headers["x-api-key"] == "k"
    assert "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == "Bearer t"
    assert seen[1].headers["user-agent"].startswith("assay-client/")


# --- signing: the client's headers are exactly what the server's helpers compute ----------


def _json_request() -> httpx.Request:
    return httpx.Request("POST", f"{BASE}/v1/models/m/predict?alias=a%20b&x=1", json={"a": 1})


def _get_request() -> httpx.Request:
    return httpx.Request("GET", f"{BASE}/v1/jobs")


def _upload_request() -> httpx.Request:
    return httpx.Request(
        "POST",
        f"{BASE}/v1/jobs",
        files={"file": ("r.csv", b"a\n1\n", "text/csv")},
        data={"model": "m"},
        headers={"content-type": "multipart/form-data; boundary=fixed-boundary"},
    )


@pytest.mark.parametrize("build", [_json_request, _get_request, _upload_request])
def test_client_signatures_match_the_servers_own(build: Callable[[], httpx.Request]) -> None:
    secret = b"\x01" * 32
    mine, theirs = build(), build()
    client_signing.sign_request(mine, key_id="kid", secret=secret, created=1700000000, nonce="n")
    server_signing.sign_request(
        theirs, key_id="kid", signing_secret=secret, created=1700000000, nonce="n"
    )
    for header in ("content-digest", "signature-input", "signature"):
        assert mine.headers[header] == theirs.headers[header], header
    assert "content-type" in mine.headers["signature-input"] or build is _get_request


def test_the_signing_secret_and_key_id_are_read_like_the_server_reads_them() -> None:
    shown = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"
    assert client_signing.decode_signing_secret(shown) == server_signing.decode_signing_secret(
        shown
    )
    key = "assay_sk_abc123_secretpart"
    assert client_signing.api_key_id(key) == server_signing.api_key_id(key) == "abc123"


# --- the SSE parser -------------------------------------------------------------------------


def test_sse_parsing_follows_the_event_stream_rules() -> None:
    decoder = SSEDecoder()
    chunks = [
        "\ufeffid: 1\r",
        '\nevent: state\r\ndata: {"a"',
        ":1}\r\n\r\n: heartbeat\r\n\r\n",
        "id: 2\ndata:first\ndata: second\u2028half\n\n",
        "id\ndata: no id now\n\n",
        "retry: 2500\nevent: empty\n\n",
        "id: bad\0id\ndata: x\rdata:y\r\r",
        "data: unfinished",
    ]
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    assert [(e.event, e.data, e.id) for e in events] == [
        ("state", '{"a":1}', "1"),
        ("message", "first\nsecond\u2028half", "2"),
        ("message", "no id now", ""),
        ("message", "x\ny", ""),
    ]
    assert decoder.retry == 2500
    assert events[-1].retry == 2500


# --- reconnection ------------------------------------------------------------------------


def _event(event_id: int, kind: str, state: str) -> str:
    data = {"job_id": "j", "state": state, "progress": {"done": 1, "total": 2, "row_errors": 0}}
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"


def test_watch_gives_up_after_max_reconnects_without_progress() -> None:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:
            return httpx.Response(200, text=_event(4, "state", "running"))
        return httpx.Response(200, text=": only a heartbeat\n\n")

    with Client(BASE, api_key="k", transport=httpx.MockTransport(answer)) as assay:
        events = assay.watch("j", reconnect_delay=0, max_reconnects=2)
        seen = [next(events)]
        with pytest.raises(httpx.ReadError, match="kept closing"):
            next(events)
    assert [e.id for e in seen] == [4]
    assert len(requests) == 3
    assert [r.headers.get("last-event-id") for r in requests] == [None, "4", "4"]


async def test_async_watch_resumes_after_a_clean_close_and_ends_at_done() -> None:
    bodies = [
        _event(1, "state", "running"),
        _event(2, "progress", "running")
        + _event(3, "state", "succeeded")
        + _event(3, "done", "succeeded"),
    ]
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, text=bodies[len(requests) - 1])

    async with AsyncClient(BASE, token="t", transport=httpx.MockTransport(answer)) as assay:
        events = [e async for e in assay.progress("j", reconnect_delay=0)]
    assert [(e.id, e.event) for e in events] == [
        (1, "state"),
        (2, "progress"),
        (3, "state"),
        (3, "done"),
    ]
    assert requests[1].headers["last-event-id"] == "1"


def test_watch_resumes_through_a_restarting_server_but_not_past_a_real_error() -> None:
    answers = [
        httpx.Response(200, text=_event(1, "state", "running")),
        httpx.Response(503, json={"type": "urn:assay:problem:service-unavailable"}),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(200, text=_event(2, "state", "succeeded") + _event(2, "done", "succeeded")),
    ]
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answers[len(requests) - 1]

    with Client(BASE, api_key="k", transport=httpx.MockTransport(answer)) as assay:
        events = list(assay.watch("j", reconnect_delay=0))
    assert [(e.id, e.event) for e in events] == [(1, "state"), (2, "state"), (2, "done")]
    assert [r.headers.get("last-event-id") for r in requests] == [None, "1", "1", "1"]

    forbidden = httpx.MockTransport(lambda _: _problem(403, "forbidden"))
    with Client(BASE, api_key="k", transport=forbidden) as assay, pytest.raises(AssayError):
        next(assay.watch("j", reconnect_delay=0))


def test_rows_become_one_tensor_per_field() -> None:
    tensors = rows_to_inputs(
        [{"a": 1, "b": "x", "c": True, "d": 1}, {"a": 2.5, "b": "y", "c": False, "d": 2}],
        datatypes={"d": "FP32"},
    )
    assert [(t.name, t.datatype, t.shape, t.data) for t in tensors] == [
        ("a", "FP64", [2], [1.0, 2.5]),
        ("b", "BYTES", [2], ["x", "y"]),
        ("c", "BOOL", [2], [True, False]),
        ("d", "FP32", [2], [1.0, 2.0]),
    ]
    with pytest.raises(ValueError, match="row 1"):
        rows_to_inputs([{"a": 1}, {"b": 2}])
    with pytest.raises(TypeError, match="mixes"):
        rows_to_inputs([{"a": 1}, {"a": "x"}])
    with pytest.raises(ValueError, match="at least one row"):
        rows_to_inputs([])
