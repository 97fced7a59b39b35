"""`assay_client.Client` against a live Assay over loopback HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from assay_client import (
    Client,
    Forbidden,
    NotFound,
    Prediction,
    RateLimited,
    RowError,
    Tensor,
    Unauthorized,
    ValidationFailed,
    rows_to_inputs,
)

from tests.clients.live import MODEL, LiveServer, ScoringGate, Tenant, new_tenant
from tests.clients.support import (
    CutFirstEventStream,
    batch_rows,
    check_progress_events,
    check_result_csv,
    csv_bytes,
)

GB_BIG = {"amount": 5000, "country": "GB"}
US_SMALL = {"amount": 10, "country": "US"}


def _client(live: LiveServer, tenant: Tenant, **options: object) -> Client:
    return Client(live.base_url, api_key=tenant.api_key, **options)  # type: ignore[arg-type]


def test_predict_one_record_and_a_batch_with_a_row_error(live: LiveServer, tenant: Tenant) -> None:
    with _client(live, tenant) as assay:
        one = assay.predict(MODEL, GB_BIG)
        batch = assay.predict(
            MODEL, records=[US_SMALL, {"amount": 5, "country": "FR"}], explain=False, version=1
        )

    assert one.model.name == MODEL
    assert one.model.version == 1
    assert one.model.digest
    [scored] = one.results
    assert isinstance(scored, Prediction)
    assert (scored.score, scored.label) == (1.0, "PASS")
    assert scored.explanation is not None
    assert scored.explanation["kind"] == "rules"
    first, second = batch.results
    assert isinstance(first, Prediction)
    assert (first.score, first.label, first.explanation) == (0.0, "FAIL", None)
    assert isinstance(second, RowError)
    assert second.index == 1
    assert [e.field for e in second.errors] == ["country"]
    assert batch.predictions == [first]
    assert batch.row_errors == [second]


def test_a_bearer_token_works_like_an_api_key(live: LiveServer, tenant: Tenant) -> None:
    with Client(live.base_url, token=tenant.token) as assay:
        result = assay.predict(MODEL, US_SMALL, alias="production")
    assert isinstance(result.results[0], Prediction)


def test_infer_from_rows_and_from_tensors(live: LiveServer, tenant: Tenant) -> None:
    rows = [GB_BIG, US_SMALL, {"amount": 1500.5, "country": "DE"}]
    with _client(live, tenant) as assay:
        from_rows = assay.infer(MODEL, rows=rows, request_id="req-1")
        tensors = [
            Tensor("amount", "FP64", [2], [5000.0, 10.0]),
            {"name": "country", "datatype": "BYTES", "shape": [2], "data": ["GB", "US"]},
        ]
        from_tensors = assay.infer(MODEL, tensors, version=1, outputs=["score"])

    assert from_rows.model_name == MODEL
    assert from_rows.model_version == "1"
    assert from_rows.id == "req-1"
    assert [r["score"] for r in from_rows.rows()] == [1.0, 0.0, 2 / 3]
    assert from_rows.output("label").data == ["PASS", "FAIL", "CONDITIONAL PASS"]
    assert [t.name for t in from_tensors.outputs] == ["score"]
    assert from_tensors.output("score").data == [1.0, 0.0]
    assert [t.datatype for t in rows_to_inputs(rows)] == ["FP64", "BYTES"]


def test_models_are_listed_and_read(live: LiveServer, tenant: Tenant) -> None:
    with _client(live, tenant) as assay:
        listed = assay.list_models()
        model = assay.get_model(MODEL)
        with pytest.raises(NotFound) as missing:
            assay.get_model("no-such-model")

    assert [m.name for m in listed] == [MODEL]
    assert model.kind == "rules"
    assert model.aliases == {"production": 1}
    assert [v.version for v in model.versions] == [1]
    assert missing.value.status == 404
    assert missing.value.type == "urn:assay:problem:not-found"
    assert missing.value.request_id


def test_a_200_row_batch_is_watched_to_the_end_across_a_dropped_connection(
    live: LiveServer, tenant: Tenant, scoring_gate: ScoringGate, tmp_path: Path
) -> None:
    rows = batch_rows(200)
    source = tmp_path / "rows.csv"
    source.write_bytes(csv_bytes(rows))
    transport = CutFirstEventStream()
    with _client(live, tenant, transport=transport) as assay:
        job = assay.submit_batch(MODEL, source)
        assert job.state in ("queued", "running")
        assert job.params["model"] == MODEL
        events = []
        for event in assay.watch(job.id, reconnect_delay=0):
            events.append(event)
            if event.progress.done > 0:
                scoring_gate.open()  # the job has made progress: let it finish
        finished = assay.get_job(job.id)
        download = assay.download_result(job.id, tmp_path / "result.csv")
        jsonl = list(assay.iter_result(job.id))

    check_progress_events(events, 200, "succeeded")
    # The first stream was cut after one event; the second resumed after it.
    assert len(transport.event_requests) == 2
    assert "last-event-id" not in transport.event_requests[0]
    assert transport.event_requests[1]["last-event-id"] == str(events[0].id)
    assert finished.state == "succeeded"
    assert finished.progress.total == 200
    assert finished.progress.row_errors == sum(1 for r in rows if r["country"] == "FR")
    assert download.partial is False
    assert download.path == str(tmp_path / "result.csv")
    assert download.bytes_written == (tmp_path / "result.csv").stat().st_size
    assert not (tmp_path / "result.csv.part").exists()
    check_result_csv((tmp_path / "result.csv").read_text(encoding="utf-8"), rows)
    assert [r["row"] for r in jsonl] == list(range(200))


def test_jobs_are_listed_page_by_page(live: LiveServer, tenant: Tenant) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    with _client(live, tenant) as assay:
        submitted = [
            assay.submit_batch(MODEL, csv_bytes(batch_rows(3)), format="csv") for _ in range(3)
        ]
        for job in submitted:
            assert assay.wait(job.id, reconnect_delay=0).state == "succeeded"
        page = assay.list_jobs(limit=2)
        every = list(assay.iter_jobs(page_size=2, since=before, kind="batch_score"))
        none_running = assay.list_jobs(state="running")

    newest_first = [job.id for job in reversed(submitted)]
    assert [job.id for job in page.items] == newest_first[:2]
    assert page.next_cursor is not None
    assert [job.id for job in every] == newest_first
    assert none_running.items == []
    assert none_running.next_cursor is None


def test_a_running_job_is_cancelled_and_its_partial_result_kept(
    live: LiveServer, tenant: Tenant, scoring_gate: ScoringGate
) -> None:
    with _client(live, tenant) as assay:
        job = assay.submit_batch(MODEL, io.BytesIO(csv_bytes(batch_rows(12))), format="csv")
        events = []
        for event in assay.progress(job.id, reconnect_delay=0):
            events.append(event)
            if event.progress.done > 0 and not scoring_gate.opened:
                # Running, and held at its next scoring call: cancel it there.
                cancelling = assay.cancel_job(job.id)
                assert cancelling.cancel_requested
                assert cancelling.state == "running"
                scoring_gate.open()
        ended = assay.get_job(job.id)
        written = io.BytesIO()
        download = assay.download_result(job.id, written, format="jsonl")

    assert events[-1].event == "done"
    assert events[-1].state == "cancelled"
    assert ended.state == "cancelled"
    assert ended.partial is True
    assert download.partial is True
    assert download.path is None
    scored = [json.loads(line) for line in written.getvalue().splitlines()]
    assert len(scored) == ended.progress.done < 12


def test_problems_become_the_matching_exceptions(live: LiveServer, tenant: Tenant) -> None:
    with _client(live, tenant) as assay:
        with pytest.raises(ValidationFailed) as invalid:
            assay.predict(MODEL, records=[GB_BIG, {"amount": -1, "country": "GB"}], strict=True)
        with pytest.raises(NotFound):
            assay.get_job(str(uuid.uuid4()))
        with pytest.raises(NotFound):
            assay.predict("no-such-model", GB_BIG)
    with Client(live.base_url, api_key=tenant.read_only_key) as reader:
        with pytest.raises(Forbidden) as forbidden:
            reader.predict(MODEL, GB_BIG)
        assert reader.list_models()[0].name == MODEL
    stranger = Client(live.base_url, api_key=tenant.api_key + "x")
    with stranger, pytest.raises(Unauthorized):
        stranger.list_models()

    assert invalid.value.status == 422
    assert any(e.field and "amount" in e.field for e in invalid.value.errors)
    assert "amount" in str(invalid.value)
    assert forbidden.value.status == 403


def test_a_scoring_quota_is_rate_limited_with_retry_after(live: LiveServer) -> None:
    limited = live.run(new_tenant(live, scoring_quota="2/day"))
    with Client(live.base_url, api_key=limited.api_key) as assay:
        assay.predict(MODEL, GB_BIG)
        assay.predict(MODEL, GB_BIG)
        with pytest.raises(RateLimited) as refused:
            assay.predict(MODEL, GB_BIG)

    assert refused.value.status == 429
    assert refused.value.retry_after is not None
    assert refused.value.retry_after > 0


def test_a_signing_required_key_is_signed_by_the_client(
    live: LiveServer, tenant: Tenant, tmp_path: Path
) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in batch_rows(5)) + "\n", encoding="utf-8")
    signed = Client(live.base_url, api_key=tenant.signing_key, signing_secret=tenant.signing_secret)
    with signed as assay:
        result = assay.predict(MODEL, GB_BIG, alias="production", explain=False)
        job = assay.submit_batch(MODEL, source)
        ended = assay.wait(job.id, reconnect_delay=0)
        rows = list(assay.iter_result(job.id))
    unsigned = Client(live.base_url, api_key=tenant.signing_key)
    with unsigned, pytest.raises(Unauthorized) as refused:
        unsigned.predict(MODEL, GB_BIG)

    assert isinstance(result.results[0], Prediction)
    assert ended.state == "succeeded"
    assert len(rows) == 5
    assert refused.value.status == 401


def test_the_transport_is_injectable(live: LiveServer, tenant: Tenant) -> None:
    seen: list[str] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(f"{request.method} {request.url.path}")
            return super().handle_request(request)

    with _client(live, tenant, transport=Recording(), timeout=10.0) as assay:
        assay.list_models()
    assert seen == ["GET /v1/models"]


def test_submit_batch_sends_explain_and_version_as_form_fields(
    live: LiveServer, tenant: Tenant
) -> None:
    with _client(live, tenant) as assay:
        job = assay.submit_batch(
            MODEL, csv_bytes(batch_rows(3)), format="csv", version=1, explain=False
        )
        assert assay.wait(job.id, reconnect_delay=0).state == "succeeded"
