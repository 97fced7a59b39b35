"""`assay_client.AsyncClient` against a live Assay over loopback HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import httpx
import pytest
from assay_client import (
    AsyncClient,
    Conflict,
    Forbidden,
    JobEvent,
    NotFound,
    Prediction,
    RateLimited,
    RowError,
    Unauthorized,
    ValidationFailed,
)

from tests.clients.live import MODEL, LiveServer, ScoringGate, Tenant, new_tenant
from tests.clients.support import (
    AsyncCutFirstEventStream,
    batch_rows,
    check_progress_events,
    check_result_csv,
    csv_bytes,
)

GB_BIG = {"amount": 5000, "country": "GB"}
US_SMALL = {"amount": 10, "country": "US"}


def _client(live: LiveServer, tenant: Tenant, **options: object) -> AsyncClient:
    return AsyncClient(live.base_url, api_key=tenant.api_key, **options)  # type: ignore[arg-type]


async def test_predict_infer_and_models(live: LiveServer, tenant: Tenant) -> None:
    async with _client(live, tenant) as assay:
        one = await assay.predict(MODEL, GB_BIG, explain=True)
        batch = await assay.predict(MODEL, records=[US_SMALL, "not an object"], alias="production")
        inferred = await assay.infer(MODEL, rows=[GB_BIG, US_SMALL], version="production")
        models = await assay.list_models()
        model = await assay.get_model(MODEL)

    [scored] = one.results
    assert isinstance(scored, Prediction)
    assert (scored.score, scored.label) == (1.0, "PASS")
    assert isinstance(batch.results[0], Prediction)
    assert isinstance(batch.results[1], RowError)
    assert batch.results[1].errors[0].field is None
    assert [r["label"] for r in inferred.rows()] == ["PASS", "FAIL"]
    assert [m.name for m in models] == [MODEL]
    assert model.aliases == {"production": 1}


async def test_a_200_row_batch_is_followed_asynchronously_across_a_dropped_connection(
    live: LiveServer, tenant: Tenant, scoring_gate: ScoringGate, tmp_path: Path
) -> None:
    rows = batch_rows(200)
    transport = AsyncCutFirstEventStream()
    async with _client(live, tenant, transport=transport) as assay:
        job = await assay.submit_batch(MODEL, csv_bytes(rows), format="csv")
        events: list[JobEvent] = []
        async for event in assay.watch(job.id, reconnect_delay=0):
            events.append(event)
            if event.progress.done > 0:
                scoring_gate.open()
        download = await assay.download_result(job.id, str(tmp_path / "result.csv"))
        streamed = [row async for row in assay.iter_result(job.id)]
        listed = [j.id async for j in assay.iter_jobs(page_size=1)]
        page = await assay.list_jobs(kind="batch_score", state="succeeded")

    check_progress_events(events, 200, "succeeded")
    assert len(transport.event_requests) == 2
    assert transport.event_requests[1]["last-event-id"] == str(events[0].id)
    assert download.partial is False
    check_result_csv((tmp_path / "result.csv").read_text(encoding="utf-8"), rows)
    assert [r["row"] for r in streamed] == list(range(200))
    assert listed == [job.id]
    assert [j.id for j in page.items] == [job.id]


async def test_cancel_and_a_result_before_the_end(
    live: LiveServer, tenant: Tenant, scoring_gate: ScoringGate
) -> None:
    async with _client(live, tenant) as assay:
        job = await assay.submit_batch(MODEL, io.BytesIO(csv_bytes(batch_rows(12))), format="csv")
        with pytest.raises(Conflict) as unfinished:
            await assay.download_result(job.id, io.BytesIO())
        async for event in assay.watch(job.id, reconnect_delay=0):
            if event.progress.done > 0 and not scoring_gate.opened:
                cancelling = await assay.cancel_job(job.id)
                assert cancelling.cancel_requested
                scoring_gate.open()
        ended = await assay.get_job(job.id)
        written = io.BytesIO()
        download = await assay.download_result(job.id, written, format="jsonl")

    assert unfinished.value.status == 409
    assert ended.state == "cancelled"
    assert download.partial is True
    scored = [json.loads(line) for line in written.getvalue().splitlines()]
    assert len(scored) == ended.progress.done < 12


async def test_problems_become_the_matching_exceptions(live: LiveServer, tenant: Tenant) -> None:
    async with _client(live, tenant) as assay:
        with pytest.raises(ValidationFailed) as invalid:
            await assay.predict(MODEL, {"amount": "lots", "country": "GB"})
        with pytest.raises(NotFound):
            await assay.cancel_job(str(uuid.uuid4()))
        with pytest.raises(NotFound):
            async for _ in assay.watch(str(uuid.uuid4())):
                pass
    reader = AsyncClient(live.base_url, api_key=tenant.read_only_key)
    async with reader:
        with pytest.raises(Forbidden):
            await reader.submit_batch(MODEL, b"amount,country\n1,GB\n", format="csv")
    stranger = AsyncClient(live.base_url, token="not-a-token")
    async with stranger:
        with pytest.raises(Unauthorized):
            await stranger.list_models()
    assert any(e.field and "amount" in e.field for e in invalid.value.errors)


async def test_a_scoring_quota_is_rate_limited(live: LiveServer) -> None:
    limited = live.run(new_tenant(live, scoring_quota="1/day"))
    async with AsyncClient(live.base_url, api_key=limited.api_key) as assay:
        await assay.infer(MODEL, rows=[GB_BIG])
        with pytest.raises(RateLimited) as refused:
            await assay.infer(MODEL, rows=[GB_BIG])
    assert refused.value.retry_after is not None


async def test_a_signing_required_key_is_signed_by_the_async_client(
    live: LiveServer, tenant: Tenant, tmp_path: Path
) -> None:
    source = tmp_path / "rows.csv"
    source.write_bytes(csv_bytes(batch_rows(6)))
    signed = AsyncClient(
        live.base_url, api_key=tenant.signing_key, signing_secret=tenant.signing_secret
    )
    async with signed as assay:
        inferred = await assay.infer(MODEL, rows=[GB_BIG])
        job = await assay.submit_batch(MODEL, source, alias="production")
        ended = await assay.wait(job.id, reconnect_delay=0)
        cancelled = await assay.cancel_job(job.id)  # a finished job: nothing to cancel
        first = [j async for j in assay.iter_jobs()]

    assert inferred.output("score").data == [1.0]
    assert ended.state == cancelled.state == "succeeded"
    assert [j.id for j in first] == [job.id]


async def test_an_injected_async_transport_sees_every_request(
    live: LiveServer, tenant: Tenant
) -> None:
    seen: list[str] = []

    class Recording(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(f"{request.method} {request.url.path}")
            return await super().handle_async_request(request)

    async with _client(live, tenant, transport=Recording()) as assay:
        await assay.get_model(MODEL)
    assert seen == [f"GET /v1/models/{MODEL}"]
