"""A scan on a real `assay worker` killed mid-scan: another worker finishes it, and no
attempt that was answered and recorded is ever sent again (the mock target's request log
says what it received)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from assay.core.tenancy import across_tenants
from assay.mock_target.background import BackgroundTarget, serve_in_background
from assay.scans.models import ScanAttempt
from assay.settings import Settings
from tests.conftest import make_database_url, require_service
from tests.jobs.workers import start_worker, workers
from tests.scans.conftest import (
    Scanner,
    all_attempts,
    chat_target,
    mock_requests,
    ready_scanner,
    register_target,
    scan_settings,
    start_scan,
    wait_for_scan,
)
from tests.support.identity import Member


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    url, drop = await make_database_url("postgresql", tmp_path)
    yield url
    if drop is not None:
        await drop()


@pytest.fixture
def target_mock() -> Iterator[BackgroundTarget]:
    # Slow enough that the kill lands mid-scan whatever the machine's load.
    running = serve_in_background(latency_seconds=0.05)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], database_url: str, target_mock: BackgroundTarget
) -> Settings:
    require_service("redis")
    return settings_factory(
        database_url=database_url,
        jobs_broker="redis://127.0.0.1:6379/15",
        jobs_queue=f"assay-test-{uuid.uuid4().hex[:12]}",
        jobs_lease_seconds=2,
        jobs_retry_base_seconds=0,
        **scan_settings(),
    )


async def _recorded(app: FastAPI) -> list[ScanAttempt]:
    async with app.state.database.sessionmaker() as db:
        return list(
            (await db.scalars(across_tenants(select(ScanAttempt), "test: attempts so far"))).all()
        )


async def test_a_killed_workers_scan_resumes_without_resending_an_answered_attempt(
    client: httpx.AsyncClient,
    app: FastAPI,
    owner: Member,
    target_mock: BackgroundTarget,
    settings: Settings,
    tmp_path: Path,
) -> None:
    scanner: Scanner = await ready_scanner(app, client, owner, target_mock)
    await register_target(
        client, scanner, "steady", chat_target(target_mock, "vulnerable", concurrency=2)
    )
    with workers(settings, tmp_path) as started:
        doomed = start_worker(started, settings, tmp_path, concurrency=1)
        scan = await start_scan(
            client, scanner, target="steady", transforms=["base64", "leetspeak"]
        )
        await wait_for_scan(client, scanner, scan["id"], lambda s: s["done"] >= 8)
        doomed.kill()
        before = {a.number: a.prompt for a in await _recorded(app)}
        assert len(before) > 0
        successor = start_worker(started, settings, tmp_path, concurrency=1)
        finished = await wait_for_scan(client, scanner, scan["id"])
        assert finished["state"] == "succeeded", finished
        assert len(before) < finished["total"]  # the kill landed mid-scan
        assert any(e for e in successor.events("job_chunk_taken"))

    attempts = await all_attempts(client, scanner, scan["id"])
    assert [a["number"] for a in attempts] == list(range(finished["total"]))
    sent = Counter(entry["prompt"] for entry in mock_requests(target_mock))
    planned = Counter(a["prompt"] for a in attempts)
    # Every attempt recorded before the kill was sent once (as often as the scan has
    # attempts with that very prompt), never again.
    for number, prompt in before.items():
        assert sent[prompt] == planned[prompt], (number, prompt)
    # At most what was in flight when the worker died went out twice.
    assert sum(sent.values()) - len(attempts) <= 2
