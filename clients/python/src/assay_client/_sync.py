"""`Client`: the synchronous Assay client."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from assay_client import _base
from assay_client._base import BatchInput, ResultDestination
from assay_client._sse import SSEDecoder
from assay_client.errors import AssayError
from assay_client.oip import rows_to_inputs
from assay_client.types import (
    InferResult,
    InputFormat,
    Job,
    JobEvent,
    JobPage,
    Model,
    PredictResult,
    ResultDownload,
    Tensor,
)


class Client:
    """A synchronous client of one Assay server.

    Authenticate with an API key (`api_key`, sent as `X-API-Key`; with `signing_secret`
    every request is also signed) or an access token (`token`, sent as a bearer token).
    `transport` replaces httpx's network transport (tests, proxies, retries).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        signing_secret: str | None = None,
        timeout: float | httpx.Timeout = _base.DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        options = _base.http_options(
            base_url,
            api_key=api_key,
            token=token,
            signing_secret=signing_secret,
            timeout=timeout,
            headers=headers,
        )
        self._http = httpx.Client(transport=transport, **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: _base.Call) -> httpx.Response:
        response = self._http.request(call.method, call.path, **call.arguments())
        _base.raise_for_problem(response)
        return response

    # --- scoring ------------------------------------------------------------------------

    def predict(
        self,
        model: str,
        record: Mapping[str, Any] | None = None,
        *,
        records: Sequence[Any] | None = None,
        alias: str | None = None,
        version: int | None = None,
        explain: bool | None = None,
        strict: bool | None = None,
    ) -> PredictResult:
        """Score one `record` or a batch of `records` (`POST /v1/models/{name}/predict`)."""
        call = _base.predict_call(
            model, record, records, alias=alias, version=version, explain=explain, strict=strict
        )
        return _base.predict_result(self._send(call))

    def infer(
        self,
        model: str,
        inputs: Sequence[Tensor | Mapping[str, Any]] | None = None,
        *,
        rows: Sequence[Mapping[str, Any]] | None = None,
        datatypes: Mapping[str, str] | None = None,
        version: str | int | None = None,
        outputs: Sequence[str] | None = None,
        request_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> InferResult:
        """Open Inference Protocol V2 inference, from tensors or from `rows` (dicts)."""
        if (inputs is None) == (rows is None):
            msg = "pass exactly one of inputs and rows"
            raise ValueError(msg)
        tensors = inputs if inputs is not None else rows_to_inputs(rows or [], datatypes)
        call = _base.infer_call(
            model,
            tensors,
            version=version,
            outputs=outputs,
            request_id=request_id,
            parameters=parameters,
        )
        return _base.infer_result(self._send(call))

    # --- models -------------------------------------------------------------------------

    def list_models(self) -> list[Model]:
        return _base.models(self._send(_base.list_models_call()))

    def get_model(self, name: str) -> Model:
        return _base.model(self._send(_base.get_model_call(name)))

    # --- jobs ---------------------------------------------------------------------------

    def submit_batch(
        self,
        model: str,
        source: BatchInput,
        *,
        format: InputFormat | None = None,
        alias: str | None = None,
        version: int | None = None,
        explain: bool | None = None,
    ) -> Job:
        """Submit a CSV or JSONL file (a path, bytes or a binary file) for batch scoring.

        A path is streamed from disk, unless the client signs requests (a signature
        covers every byte, so the file is read into memory first).
        """
        fmt = _base.batch_format(source, format)
        form = _base.batch_form(model, alias=alias, version=version, explain=explain, fmt=fmt)
        if isinstance(source, (str, os.PathLike)):
            with Path(source).open("rb") as handle:
                call = _base.submit_call(handle, Path(source).name, form)
                return _base.job(self._send(call))
        name = f"input.{fmt}"
        return _base.job(self._send(_base.submit_call(source, name, form)))

    def get_job(self, job_id: str) -> Job:
        return _base.job(self._send(_base.Call("GET", _base.job_path(job_id))))

    def list_jobs(
        self,
        *,
        kind: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> JobPage:
        """One page of jobs, newest first; pass `next_cursor` back as `cursor`."""
        call = _base.list_jobs_call(
            kind=kind, state=state, since=since, until=until, cursor=cursor, limit=limit
        )
        return _base.job_page(self._send(call))

    def iter_jobs(
        self,
        *,
        kind: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = _base.JOBS_PAGE_SIZE,
    ) -> Iterator[Job]:
        """Every matching job, newest first, fetching pages as it goes."""
        cursor: str | None = None
        while True:
            page = self.list_jobs(
                kind=kind, state=state, since=since, until=until, cursor=cursor, limit=page_size
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def cancel_job(self, job_id: str) -> Job:
        """Cancel: a queued job at once, a running one at its next checkpoint."""
        return _base.job(self._send(_base.Call("POST", _base.job_path(job_id) + "/cancel")))

    def watch(
        self,
        job_id: str,
        *,
        last_event_id: int | None = None,
        reconnect_delay: float = _base.DEFAULT_RECONNECT_DELAY,
        max_reconnects: int = _base.DEFAULT_MAX_RECONNECTS,
    ) -> Iterator[JobEvent]:
        """The job's events (`state`, `progress`, then `done`) as they happen.

        A dropped connection (or a 502, 503 or 504 from a proxy or a restarting server)
        is resumed with `Last-Event-ID`, so no event is lost or repeated; after
        `max_reconnects` failures in a row the last error is raised. The
        iterator ends after the `done` event, when the job has ended.
        """
        path = _base.job_path(job_id) + "/events"
        timeout = _base.events_timeout(self._http.timeout)
        failures = 0
        retry_ms: int | None = None
        while True:
            decoder = SSEDecoder()
            try:
                with self._http.stream(
                    "GET", path, headers=_base.events_headers(last_event_id), timeout=timeout
                ) as response:
                    if response.is_error:
                        response.read()
                        _base.raise_for_problem(response)
                    for chunk in response.iter_text():
                        for sse in decoder.feed(chunk):
                            event = _base.job_event(sse)
                            if event is None:
                                continue
                            last_event_id, failures = event.id, 0
                            yield event
                            if event.finished:
                                return
            except (httpx.TransportError, AssayError) as exc:
                if not _base.is_resumable(exc) or failures >= max_reconnects:
                    raise
            retry_ms = decoder.retry if decoder.retry is not None else retry_ms
            failures += 1
            if failures > max_reconnects:
                msg = f"the event stream of job {job_id} kept closing before the job ended"
                raise httpx.ReadError(msg)
            time.sleep(_base.reconnect_delay(reconnect_delay, failures, retry_ms))

    # The same iterator, under a name that reads well in a progress loop.
    progress = watch

    def wait(
        self,
        job_id: str,
        *,
        reconnect_delay: float = _base.DEFAULT_RECONNECT_DELAY,
        max_reconnects: int = _base.DEFAULT_MAX_RECONNECTS,
    ) -> Job:
        """Follow the job's events until it ends; then the job as it ended."""
        events = self.watch(job_id, reconnect_delay=reconnect_delay, max_reconnects=max_reconnects)
        for _ in events:
            pass
        return self.get_job(job_id)

    def download_result(
        self, job_id: str, destination: ResultDestination, *, format: InputFormat = "csv"
    ) -> ResultDownload:
        """Stream the job's result rows to a path or a binary file, never whole in memory.

        A path is written through a temporary file beside it, renamed once complete.
        """
        call = _base.result_call(job_id, format)
        path: Path | None = None
        with self._http.stream(call.method, call.path, params=call.params) as response:
            if response.is_error:
                response.read()
                _base.raise_for_problem(response)
            partial = _base.is_partial(response)
            if isinstance(destination, (str, os.PathLike)):
                path = Path(destination)
                temporary = path.with_name(path.name + ".part")
                with temporary.open("wb") as handle:
                    written = self._copy(response, handle)
                temporary.replace(path)
            else:
                written = self._copy(response, destination)
        return ResultDownload(
            path=None if path is None else str(path),
            bytes_written=written,
            format=format,
            partial=partial,
        )

    @staticmethod
    def _copy(response: httpx.Response, handle: IO[bytes]) -> int:
        written = 0
        for block in response.iter_bytes():
            handle.write(block)
            written += len(block)
        return written

    def iter_result(self, job_id: str) -> Iterator[dict[str, Any]]:
        """The job's result rows as dicts, streamed (`row`, `status`, `score`, ...)."""
        call = _base.result_call(job_id, "jsonl")
        with self._http.stream(call.method, call.path, params=call.params) as response:
            if response.is_error:
                response.read()
                _base.raise_for_problem(response)
            for line in response.iter_lines():
                if line.strip():
                    row: dict[str, Any] = json.loads(line)
                    yield row
