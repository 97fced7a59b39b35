"""What the sync and async clients share: configuration, request shapes, answer parsing."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from assay_client._sse import ServerSentEvent
from assay_client.errors import AssayError, error_from_response
from assay_client.signing import SigningAuth
from assay_client.types import (
    InferResult,
    InputFormat,
    Job,
    JobEvent,
    JobPage,
    Model,
    PredictResult,
    Tensor,
)

__version__ = "0.1.0"

DEFAULT_TIMEOUT = 30.0
# An event stream is quiet between heartbeats (15 s by default); a read waits longer.
EVENTS_READ_TIMEOUT = 60.0
DEFAULT_RECONNECT_DELAY = 0.5
MAX_RECONNECT_DELAY = 10.0
DEFAULT_MAX_RECONNECTS = 5
JOBS_PAGE_SIZE = 100

# What `submit_batch` accepts as input: a path, the bytes, or an open binary file.
BatchInput = str | os.PathLike[str] | bytes | IO[bytes]
# Where `download_result` writes: a path, or an open binary file.
ResultDestination = str | os.PathLike[str] | IO[bytes]
# Answers after which an event stream is resumed with Last-Event-ID (besides a dropped
# connection): a proxy or load balancer between a restarting server and the client.
RESUMABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Call:
    """One API request, before a sync or async httpx client sends it."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    data: dict[str, str] | None = None
    files: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"params": self.params or None, "headers": self.headers}
        if self.json is not None:
            arguments["json"] = self.json
        if self.data is not None:
            arguments["data"] = self.data
        if self.files is not None:
            arguments["files"] = self.files
        return arguments


def http_options(
    base_url: str,
    *,
    api_key: str | None,
    token: str | None,
    signing_secret: str | None,
    timeout: float | httpx.Timeout,
    headers: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The keyword arguments of `httpx.Client` / `httpx.AsyncClient` for these credentials."""
    if (api_key is None) == (token is None):
        msg = "pass exactly one of api_key and token"
        raise ValueError(msg)
    if signing_secret is not None and api_key is None:
        msg = "signing_secret signs API-key requests: pass api_key with it"
        raise ValueError(msg)
    sent = {"user-agent": f"assay-client/{__version__} httpx/{httpx.__version__}"}
    sent.update(headers or {})
    auth: httpx.Auth | None = None
    if signing_secret is not None and api_key is not None:
        auth = SigningAuth(api_key, signing_secret)
    elif api_key is not None:
        sent["x-api-key"] = api_key
    else:
        sent["authorization"] = f"Bearer {token}"
    return {
        "base_url": base_url,
        "headers": sent,
        "auth": auth,
        "timeout": timeout,
        # Assay never redirects an API call; following one could send credentials elsewhere.
        "follow_redirects": False,
    }


def events_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    read = timeout.read
    return httpx.Timeout(
        connect=timeout.connect,
        read=None if read is None else max(read, EVENTS_READ_TIMEOUT),
        write=timeout.write,
        pool=timeout.pool,
    )


def reconnect_delay(base: float, failures: int, server_retry_ms: int | None) -> float:
    """Exponential from `base` (or the stream's `retry`), capped."""
    start = base if server_retry_ms is None else server_retry_ms / 1000
    return float(min(start * 2 ** max(failures - 1, 0), MAX_RECONNECT_DELAY))


def is_resumable(error: Exception) -> bool:
    """Whether an event stream that failed with `error` is worth resuming."""
    if isinstance(error, AssayError):
        return error.status in RESUMABLE_STATUSES
    return isinstance(error, httpx.TransportError)


def raise_for_problem(response: httpx.Response) -> None:
    """Raise the `AssayError` of an error answer (its body must have been read)."""
    if response.is_error:
        raise error_from_response(response)


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


# --- request shapes ---------------------------------------------------------------------


def predict_call(
    model: str,
    record: Mapping[str, Any] | None,
    records: Sequence[Any] | None,
    *,
    alias: str | None,
    version: int | None,
    explain: bool | None,
    strict: bool | None,
) -> Call:
    if (record is None) == (records is None):
        msg = "pass exactly one of record and records"
        raise ValueError(msg)
    if alias is not None and version is not None:
        msg = "pass alias or version, not both"
        raise ValueError(msg)
    params: dict[str, Any] = {}
    if alias is not None:
        params["alias"] = alias
    if version is not None:
        params["version"] = version
    if explain is not None:
        params["explain"] = "true" if explain else "false"
    if strict is not None:
        params["strict"] = "true" if strict else "false"
    body = {"record": record} if record is not None else {"records": list(records or [])}
    return Call("POST", f"/v1/models/{_segment(model)}/predict", params=params, json=body)


def infer_call(
    model: str,
    inputs: Sequence[Tensor | Mapping[str, Any]],
    *,
    version: str | int | None,
    outputs: Sequence[str] | None,
    request_id: str | None,
    parameters: Mapping[str, Any] | None,
) -> Call:
    path = f"/v2/models/{_segment(model)}"
    if version is not None:
        path += f"/versions/{_segment(version)}"
    body: dict[str, Any] = {
        "inputs": [t.to_json() if isinstance(t, Tensor) else dict(t) for t in inputs]
    }
    if request_id is not None:
        body["id"] = request_id
    if outputs is not None:
        body["outputs"] = [{"name": name} for name in outputs]
    if parameters:
        body["parameters"] = dict(parameters)
    return Call("POST", path + "/infer", json=body)


def list_models_call() -> Call:
    return Call("GET", "/v1/models")


def get_model_call(name: str) -> Call:
    return Call("GET", f"/v1/models/{_segment(name)}")


def batch_form(
    model: str, *, alias: str | None, version: int | None, explain: bool | None, fmt: str
) -> dict[str, str]:
    form = {"model": model, "format": fmt}
    if alias is not None:
        form["alias"] = alias
    if version is not None:
        form["version"] = str(version)
    if explain is not None:
        form["explain"] = "true" if explain else "false"
    return form


def batch_format(source: BatchInput, declared: InputFormat | None) -> InputFormat:
    if declared is not None:
        if declared not in ("csv", "jsonl"):
            msg = f"format must be csv or jsonl, not {declared!r}"
            raise ValueError(msg)
        return declared
    if isinstance(source, (str, os.PathLike)):
        suffix = Path(source).suffix.lower()
        if suffix == ".csv":
            return "csv"
        if suffix in (".jsonl", ".ndjson"):
            return "jsonl"
    msg = "say the input's format: format='csv' or format='jsonl'"
    raise ValueError(msg)


MEDIA_TYPES: dict[str, str] = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


def submit_call(file: IO[bytes] | bytes, filename: str, form: dict[str, str]) -> Call:
    media_type = MEDIA_TYPES[form["format"]]
    return Call("POST", "/v1/jobs", data=form, files={"file": (filename, file, media_type)})


def list_jobs_call(
    *,
    kind: str | None,
    state: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int | None,
) -> Call:
    params: dict[str, Any] = {}
    for name, value in (("kind", kind), ("state", state), ("cursor", cursor), ("limit", limit)):
        if value is not None:
            params[name] = value
    for name, when in (("since", since), ("until", until)):
        if when is not None:
            if when.tzinfo is None:
                msg = f"{name} must be timezone-aware"
                raise ValueError(msg)
            params[name] = when.isoformat()
    return Call("GET", "/v1/jobs", params=params)


def job_path(job_id: str) -> str:
    return f"/v1/jobs/{_segment(job_id)}"


def result_call(job_id: str, fmt: InputFormat) -> Call:
    if fmt not in ("csv", "jsonl"):
        msg = f"format must be csv or jsonl, not {fmt!r}"
        raise ValueError(msg)
    return Call("GET", job_path(job_id) + "/result", params={"format": fmt})


def events_headers(last_event_id: int | None) -> dict[str, str]:
    headers = {"accept": "text/event-stream", "cache-control": "no-store"}
    if last_event_id is not None:
        headers["last-event-id"] = str(last_event_id)
    return headers


# --- answers ----------------------------------------------------------------------------


def predict_result(response: httpx.Response) -> PredictResult:
    return PredictResult.from_json(response.json())


def infer_result(response: httpx.Response) -> InferResult:
    return InferResult.from_json(response.json())


def models(response: httpx.Response) -> list[Model]:
    return [Model.from_json(m) for m in response.json()]


def model(response: httpx.Response) -> Model:
    return Model.from_json(response.json())


def job(response: httpx.Response) -> Job:
    return Job.from_json(response.json())


def job_page(response: httpx.Response) -> JobPage:
    return JobPage.from_json(response.json())


def job_event(sse: ServerSentEvent) -> JobEvent | None:
    """The job event an SSE message carries; None for a message of another kind."""
    if sse.id is None or not sse.id.isdigit():
        return None
    try:
        data = json.loads(sse.data)
    except ValueError:
        return None
    if not isinstance(data, dict) or "job_id" not in data:
        return None
    return JobEvent.from_json(int(sse.id), sse.event, data)


def is_partial(response: httpx.Response) -> bool:
    return str(response.headers.get("assay-result-partial", "false")).lower() == "true"
