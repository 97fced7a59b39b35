"""Inputs and transports of the client tests."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
from assay_client import JobEvent

COUNTRIES = ["US", "GB", "DE"]


def batch_rows(count: int) -> list[dict[str, Any]]:
    """`count` distinct valid rows; every seventh has an unknown country (a row error)."""
    rows: list[dict[str, Any]] = []
    for index in range(count):
        country = "FR" if index % 7 == 6 else COUNTRIES[index % 3]
        rows.append({"amount": index * 13 % 2000, "country": country})
    return rows


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["amount", "country"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def expected_score(row: dict[str, Any]) -> tuple[float, str] | None:
    """What the rules model of tests/support/models.py gives a row (None: a row error)."""
    if row["country"] not in COUNTRIES:
        return None
    points = (2 if row["amount"] >= 1000 else 0) + (1 if row["country"] == "GB" else 0)
    score = points / 3
    label = "PASS" if score >= 0.7 else "CONDITIONAL PASS" if score >= 0.5 else "FAIL"
    return score, label


def check_result_csv(text: str, rows: list[dict[str, Any]]) -> None:
    """The result CSV holds exactly one line per input row, each scored as expected."""
    result = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["row"]) for r in result] == list(range(len(rows)))
    for line, row in zip(result, rows, strict=True):
        expected = expected_score(row)
        if expected is None:
            assert line["status"] == "error", line
            assert "country" in line["errors"]
        else:
            assert line["status"] == "ok", line
            assert abs(float(line["score"]) - expected[0]) < 1e-9, (line, row)
            assert line["label"] == expected[1]


def check_progress_events(events: list[JobEvent], total: int, final_state: str) -> None:
    """Events in order, none repeated; progress seen mid-way; `done` last."""
    # `done` repeats the id of the change it follows (the server's revision number).
    ids = [e.id for e in events if e.event != "done"]
    assert ids == sorted(set(ids)), ids
    assert events[-1].event == "done"
    assert events[-1].id == ids[-1]
    assert events[-1].state == final_state
    assert [e for e in events if e.event == "done"] == [events[-1]]
    assert any(0 < e.progress.done < total for e in events), [e.progress for e in events]
    if final_state == "succeeded":
        assert events[-1].progress.done == total


def _complete_events(data: bytes) -> int:
    return data.replace(b"\r\n", b"\n").count(b"\n\n")


class _CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Passes the first chunk holding a whole event, then fails as a dropped connection."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[bytes]:
        seen = b""
        for chunk in self.inner:
            seen += chunk
            yield chunk
            if _complete_events(seen):
                break
        self.inner.close()
        raise httpx.RemoteProtocolError("peer closed connection (cut by the test)")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = b""
        async for chunk in self.inner:
            seen += chunk
            yield chunk
            if _complete_events(seen):
                break
        await self.inner.aclose()
        raise httpx.RemoteProtocolError("peer closed connection (cut by the test)")


class CutFirstEventStream(httpx.BaseTransport):
    """The real transport, except that the first event stream drops after one event."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.event_requests: list[httpx.Headers] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/events"):
            self.event_requests.append(request.headers)
            if len(self.event_requests) == 1:
                response.stream = _CutStream(response.stream)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncCutFirstEventStream(httpx.AsyncBaseTransport):
    """`CutFirstEventStream` for `AsyncClient`."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.event_requests: list[httpx.Headers] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/events"):
            self.event_requests.append(request.headers)
            if len(self.event_requests) == 1:
                response.stream = _CutStream(response.stream)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
