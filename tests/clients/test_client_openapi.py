"""Every request the client sends is an operation of Assay's OpenAPI document, with
parameters (query, header, form fields) that operation declares: the client cannot drift
from the API without a failing test."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from assay_client import AsyncClient, Client, NotFound, Tensor

from assay.app import create_app
from assay.settings import Settings

JOB = str(uuid.uuid4())
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
# Each client method, called with every optional parameter it sends.
CALLS: dict[str, Callable[[Client], object]] = {
    "predict": lambda c: c.predict("m", {"a": 1}, version=2, explain=False, strict=True),
    "predict_alias": lambda c: c.predict("m", records=[{"a": 1}], alias="staging"),
    "infer": lambda c: c.infer("m", [Tensor("a", "FP64", [1], [1.0])]),
    "infer_version": lambda c: c.infer("m", rows=[{"a": 1}], version="2", outputs=["score"]),
    "list_models": lambda c: c.list_models(),
    "get_model": lambda c: c.get_model("m"),
    "submit_batch": lambda c: c.submit_batch(
        "m", b"a\n1\n", format="csv", alias="production", version=1, explain=True
    ),
    "get_job": lambda c: c.get_job(JOB),
    "list_jobs": lambda c: c.list_jobs(
        kind="batch_score", state="running", since=SINCE, until=SINCE, cursor="c", limit=5
    ),
    "cancel_job": lambda c: c.cancel_job(JOB),
    "watch": lambda c: list(c.watch(JOB, last_event_id=3)),
    "download_result": lambda c: c.download_result(JOB, Path("unused.csv"), format="jsonl"),
    "iter_result": lambda c: list(c.iter_result(JOB)),
}
EXPECTED_OPERATIONS = {
    "predict": "predict",
    "predict_alias": "predict",
    "infer": "infer",
    "infer_version": "infer_version",
    "list_models": "list_models",
    "get_model": "read_model",
    "submit_batch": "submit_job",
    "get_job": "read_job",
    "list_jobs": "list_jobs",
    "cancel_job": "cancel_job",
    "watch": "job_events",
    "download_result": "job_result",
    "iter_result": "job_result",
}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = Settings(env="test", data_dir=tmp_path_factory.mktemp("openapi"))
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def _operation(document: dict[str, Any], request: httpx.Request) -> dict[str, Any]:
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, request.url.path) and request.method.lower() in operations:
            operation: dict[str, Any] = operations[request.method.lower()]
            return operation
    raise AssertionError(f"{request.method} {request.url.path} is not in the OpenAPI document")


def _sent(call: Callable[[Client], object]) -> httpx.Request:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        sent.append(request)
        return httpx.Response(404, json={"type": "urn:assay:problem:not-found", "status": 404})

    client = Client("http://assay.test", api_key="k", transport=httpx.MockTransport(answer))
    with client, pytest.raises(NotFound):
        call(client)
    [request] = sent
    return request


@pytest.mark.parametrize("name", sorted(CALLS))
def test_each_call_is_a_documented_operation_with_documented_parameters(
    name: str, openapi: dict[str, Any]
) -> None:
    request = _sent(CALLS[name])
    operation = _operation(openapi, request)
    assert operation["operationId"] == EXPECTED_OPERATIONS[name]
    declared = {(p["in"], p["name"].lower()) for p in operation.get("parameters", [])}
    for parameter in request.url.params:
        assert ("query", parameter) in declared, parameter
    if "last-event-id" in request.headers:
        assert ("header", "last-event-id") in declared
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
        fields = set(re.findall(rb'; name="([^"]+)"', request.content))
        assert {f.decode() for f in fields} <= set(schema["properties"])


def test_every_client_method_is_covered_here() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}

    # Conveniences over the calls above, and the clients' own lifecycle.
    assert public(Client) <= set(CALLS) | {"iter_jobs", "progress", "wait", "close"}
    assert public(Client) - {"close"} == public(AsyncClient) - {"aclose"}
