"""A job's life over the API: listing, cancelling, failing and retrying, following, limits,
and other organisations' jobs not found."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select

from assay.core.errors import NotFound
from assay.core.principal import platform_in
from assay.core.tenancy import across_tenants, scoped
from assay.events.models import Event
from assay.jobs.execution import JobRunner
from assay.jobs.models import JobChunk
from assay.jobs.service import JobService
from assay.registry.errors import ModelUnavailable
from tests.jobs.support import csv_of, result_rows, sse_events, submit_csv, wait_for
from tests.support.identity import MakeMember, Member, login
from tests.support.models import auth, register_rules_model

ROW = {"amount": 5000, "country": "GB"}


def _rows(count: int) -> bytes:
    return csv_of([ROW] * count, ["amount", "country"])


def _hold_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages to the broker go nowhere: submitted jobs stay queued."""

    async def nowhere(self: JobService, job_id: Any, org_id: Any) -> None:
        return None

    monkeypatch.setattr(JobService, "send", nowhere)


async def _submitted(client: httpx.AsyncClient, token: str, rows: int = 7) -> str:
    answer = await submit_csv(client, token, _rows(rows))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def _published(app: FastAPI, event_type: str) -> list[dict[str, Any]]:
    async with app.state.database.sessionmaker() as db:
        statement = across_tenants(select(Event).where(Event.type == event_type), "test")
        return [event.data for event in (await db.execute(statement)).scalars()]


class Gate:
    """Lets the first `free` scoring calls through; the others wait until opened."""

    def __init__(self, app: FastAPI, monkeypatch: pytest.MonkeyPatch, free: int) -> None:
        self.calls = 0
        self.opened = asyncio.Event()
        original: Callable[..., Awaitable[Any]] = app.state.predictions.score_unrecorded

        async def gated(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls > free:
                await self.opened.wait()
            return await original(*args, **kwargs)

        monkeypatch.setattr(app.state.predictions, "score_unrecorded", gated)


async def test_a_queued_job_is_cancelled_at_once(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_rules_model(client, owner_token)
    _hold_messages(monkeypatch)
    job_id = await _submitted(client, owner_token)

    answer = await client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(owner_token))

    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "cancelled"
    assert answer.json()["partial"] is True
    assert await result_rows(client, owner_token, job_id) == []
    [event] = await _published(app, "job.cancelled")
    assert (event["job_id"], event["state"]) == (job_id, "cancelled")


async def test_a_running_job_stops_at_its_next_checkpoint_and_keeps_what_it_scored(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_rules_model(client, owner_token)
    gate = Gate(app, monkeypatch, free=1)
    job_id = await _submitted(client, owner_token, rows=12)
    running = await wait_for(client, owner_token, job_id, {"running"})
    for _ in range(3000):
        running = (await client.get(f"/v1/jobs/{job_id}", headers=auth(owner_token))).json()
        if running["progress"]["done"] >= 2:
            break
        await asyncio.sleep(0.01)

    cancelling = await client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(owner_token))
    assert cancelling.json()["state"] == "running"
    assert cancelling.json()["cancel_requested"] is True
    gate.opened.set()
    job = await wait_for(client, owner_token, job_id)

    assert job["state"] == "cancelled"
    assert job["partial"] is True
    done = job["progress"]["done"]
    assert 2 <= done < 12
    rows = await result_rows(client, owner_token, job_id)
    assert len(rows) == done
    assert len({r["row"] for r in rows}) == done
    result = await client.get(f"/v1/jobs/{job_id}/result", headers=auth(owner_token))
    assert result.headers["assay-result-partial"] == "true"


async def test_the_result_waits_for_the_end_of_the_job(
    client: httpx.AsyncClient, owner_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_rules_model(client, owner_token)
    _hold_messages(monkeypatch)
    job_id = await _submitted(client, owner_token)
    answer = await client.get(f"/v1/jobs/{job_id}/result", headers=auth(owner_token))
    assert answer.status_code == 409
    assert answer.json()["type"] == "urn:assay:problem:conflict"


async def test_a_transient_failure_is_retried_and_the_job_succeeds(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_rules_model(client, owner_token)
    original = app.state.predictions.load
    failures = {"left": 1}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise ModelUnavailable("not yet")
        return await original(*args, **kwargs)

    monkeypatch.setattr(app.state.predictions, "load", flaky)
    job = await wait_for(client, owner_token, await _submitted(client, owner_token, rows=3))
    assert job["state"] == "succeeded"
    assert job["attempts"] == 1
    assert job["progress"]["done"] == 3


async def test_a_job_fails_after_its_last_attempt_and_at_once_when_the_model_is_gone(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_rules_model(client, owner_token)

    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise ModelUnavailable("down")

    monkeypatch.setattr(app.state.predictions, "load", unavailable)
    job = await wait_for(client, owner_token, await _submitted(client, owner_token, rows=3))
    assert job["state"] == "failed"
    assert job["attempts"] == app.state.settings.jobs_max_attempts
    assert "transient" in job["error"]

    async def gone(*args: Any, **kwargs: Any) -> Any:
        raise NotFound("No such model.")

    monkeypatch.setattr(app.state.predictions, "load", gone)
    job = await wait_for(client, owner_token, await _submitted(client, owner_token, rows=3))
    assert (job["state"], job["attempts"], job["error"]) == ("failed", 0, "No such model.")
    failed = await _published(app, "job.failed")
    assert sorted(e["error"] for e in failed) == [
        "No such model.",
        "gave up after repeated transient failures",
    ]


async def test_events_report_progress_and_the_end_and_resume_after_the_last_id(
    client: httpx.AsyncClient,
    owner: Member,
    owner_token: str,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register_rules_model(client, owner_token)
    gate = Gate(app, monkeypatch, free=0)
    job_id = await _submitted(client, owner_token, rows=6)
    # Followed from the service while the job is held, then let go.
    jobs: JobService = app.state.jobs
    assert owner.org_id is not None
    stream = jobs.events(platform_in(owner.org_id), uuid.UUID(job_id), None)
    first = await anext(stream)
    assert first.event == "state"
    gate.opened.set()
    rest = [event async for event in stream]
    assert rest[-1].event == "done"
    assert rest[-1].data["state"] == "succeeded"
    assert rest[-1].data["progress"]["done"] == 6
    ids = [first.id, *(e.id for e in rest)]
    assert ids == sorted(ids)

    # Over HTTP: the whole stream of a finished job, then a resumed one.
    answer = await client.get(f"/v1/jobs/{job_id}/events", headers=auth(owner_token))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [e for e in sse_events(answer.text) if "event" in e]
    assert [e["event"] for e in events] == ["state", "done"]
    last = events[-1]["id"]
    resumed = await client.get(
        f"/v1/jobs/{job_id}/events", headers={**auth(owner_token), "last-event-id": last}
    )
    assert [e["event"] for e in sse_events(resumed.text) if "event" in e] == ["done"]


async def test_inputs_over_the_limits_are_refused(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_rules_model(client, owner_token)
    settings = app.state.settings
    monkeypatch.setattr(settings, "jobs_max_input_bytes", 1024)
    too_big = await submit_csv(client, owner_token, _rows(200))
    assert too_big.status_code == 413
    assert too_big.json()["type"] == "urn:assay:problem:payload-too-large"
    monkeypatch.setattr(settings, "jobs_max_input_bytes", 1 << 20)
    monkeypatch.setattr(settings, "jobs_max_input_rows", 5)
    too_long = await submit_csv(client, owner_token, _rows(6))
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["code"] == "too_many_rows"
    monkeypatch.setattr(settings, "jobs_max_input_columns", 1)
    too_wide = await submit_csv(client, owner_token, _rows(2))
    assert too_wide.status_code == 422
    assert too_wide.json()["errors"][0]["code"] == "too_many_columns"


async def test_an_organisation_may_run_only_so_many_jobs_at_once(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_rules_model(client, owner_token)
    _hold_messages(monkeypatch)
    monkeypatch.setattr(app.state.settings, "jobs_max_concurrent_per_org", 2)
    await _submitted(client, owner_token)
    await _submitted(client, owner_token)
    third = await submit_csv(client, owner_token, _rows(2))
    assert third.status_code == 429
    assert third.json()["type"] == "urn:assay:problem:rate-limited"
    assert "retry-after" in third.headers


async def test_listing_filters_and_pages(
    client: httpx.AsyncClient, owner_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_rules_model(client, owner_token)
    _hold_messages(monkeypatch)
    ids = {await _submitted(client, owner_token) for _ in range(3)}

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(f"/v1/jobs{query}", headers=auth(owner_token))).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)

    async def count(query: str) -> int:
        answer = await client.get(f"/v1/jobs?{query}", headers=auth(owner_token))
        assert answer.status_code == 200, answer.text
        return len(answer.json()["items"])

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await count("state=queued&kind=batch_score") == 3
    assert await count("state=succeeded") == 0
    assert await count(f"since={future.replace('+', '%2B')}") == 0
    bad = await client.get("/v1/jobs?cursor=nonsense", headers=auth(owner_token))
    assert bad.status_code == 422


async def test_another_organisations_jobs_are_not_found(
    client: httpx.AsyncClient, owner_token: str, make_member: MakeMember
) -> None:
    await register_rules_model(client, owner_token)
    job_id = await _submitted(client, owner_token, rows=3)
    await wait_for(client, owner_token, job_id)
    stranger = (await login(client, await make_member()))["access_token"]

    for method, path in [
        ("GET", f"/v1/jobs/{job_id}"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("GET", f"/v1/jobs/{job_id}/events"),
        ("GET", f"/v1/jobs/{job_id}/result"),
    ]:
        answer = await client.request(method, path, headers=auth(stranger))
        assert answer.status_code == 404, (path, answer.text)
    listed = await client.get("/v1/jobs", headers=auth(stranger))
    assert listed.json()["items"] == []


async def test_a_viewer_may_not_submit_or_read_jobs(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    viewer = (await login(client, await make_member(role="viewer")))["access_token"]
    assert (await submit_csv(client, viewer, _rows(1))).status_code == 403
    assert (await client.get("/v1/jobs", headers=auth(viewer))).status_code == 403


async def test_a_chunk_whose_holder_died_is_taken_over_from_its_checkpoint_after_the_lease(
    client: httpx.AsyncClient,
    owner: Member,
    owner_token: str,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register_rules_model(client, owner_token)
    _hold_messages(monkeypatch)
    monkeypatch.setattr(app.state.settings, "jobs_lease_seconds", 0.2)
    jobs: JobService = app.state.jobs
    job_id = uuid.UUID(await _submitted(client, owner_token, rows=8))
    assert owner.org_id is not None
    # The first holder scores one checkpoint of its chunk, then dies (its task is
    # cancelled while it waits at the gate): its lease is left behind.
    gate = Gate(app, monkeypatch, free=1)
    holder = asyncio.create_task(jobs.runner.run(job_id, owner.org_id))
    for _ in range(3000):
        if gate.calls > 1:
            break
        await asyncio.sleep(0.01)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    gate.opened.set()
    successor = JobRunner(
        jobs.settings,
        jobs.sessionmaker,
        jobs.store,
        jobs.predictions,
        jobs.runner.announce,
        jobs.kinds,
    )

    # Until the lease expires the successor takes only the other chunk; then, sent
    # again (the sweeper's part), it takes the dead holder's chunk from its checkpoint.
    await successor.run(job_id, owner.org_id)
    for _ in range(3000):
        job = await wait_for(client, owner_token, str(job_id), {"running", "succeeded"})
        if job["state"] == "succeeded":
            break
        await jobs.sweep()
        await successor.run(job_id, owner.org_id)
        await asyncio.sleep(0.01)
    job = await wait_for(client, owner_token, str(job_id))
    assert job["state"] == "succeeded"
    rows = await result_rows(client, owner_token, str(job_id))
    assert [r["row"] for r in rows] == list(range(8))
    async with app.state.database.sessionmaker() as db:
        chunks = (
            await db.execute(
                scoped(platform_in(owner.org_id), JobChunk).where(JobChunk.job_id == job_id)
            )
        ).scalars()
        attempts = sorted(chunk.attempts for chunk in chunks)
    assert attempts == [1, 2]


async def test_a_job_cancelled_while_its_holder_is_dead_ends_once_the_lease_expires(
    client: httpx.AsyncClient,
    owner: Member,
    owner_token: str,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register_rules_model(client, owner_token)
    _hold_messages(monkeypatch)
    monkeypatch.setattr(app.state.settings, "jobs_lease_seconds", 0.2)
    jobs: JobService = app.state.jobs
    job_id = uuid.UUID(await _submitted(client, owner_token, rows=4))
    assert owner.org_id is not None
    gate = Gate(app, monkeypatch, free=1)
    holder = asyncio.create_task(jobs.runner.run(job_id, owner.org_id))
    for _ in range(3000):
        if gate.calls > 1:
            break
        await asyncio.sleep(0.01)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    gate.opened.set()

    cancelling = await client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(owner_token))
    assert cancelling.json()["cancel_requested"] is True
    for _ in range(3000):
        job = await wait_for(client, owner_token, str(job_id), {"running", "cancelled"})
        if job["state"] == "cancelled":
            break
        await jobs.sweep()
        await jobs.runner.run(job_id, owner.org_id)
        await asyncio.sleep(0.01)
    assert (job["state"], job["partial"], job["progress"]["done"]) == ("cancelled", True, 2)
    assert [r["row"] for r in await result_rows(client, owner_token, str(job_id))] == [0, 1]


async def test_the_queue_depth_counts_chunks_waiting_for_a_worker(
    client: httpx.AsyncClient,
    owner: Member,
    owner_token: str,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register_rules_model(client, owner_token)
    _hold_messages(monkeypatch)
    jobs: JobService = app.state.jobs
    size = app.state.settings.jobs_chunk_rows
    await _submitted(client, owner_token, rows=2 * size + 1)  # three chunks, none taken
    await jobs.sweep()
    assert REGISTRY.get_sample_value("assay_jobs_queue_depth") == 3
    await _submitted(client, owner_token, rows=1)
    assert await jobs.measure_queue() == 4
    assert REGISTRY.get_sample_value("assay_jobs_queue_depth") == 4
