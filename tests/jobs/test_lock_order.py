"""One lock order for a job and its chunks: the job's row first.

A claim that took a chunk and then waited for the job deadlocked against a cancel,
which writes the job and then its chunks (seen on PostgreSQL as a 500 on cancel). This
proves the order deterministically: while another transaction holds the job's row, a
claim waits before touching any chunk.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from assay.core.tenancy import OrganisationScope
from assay.jobs.models import Job, JobChunk
from tests.conftest import make_database_url
from tests.jobs.test_lifecycle import _hold_messages, _submitted
from tests.support.identity import Member
from tests.support.models import register_rules_model


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """PostgreSQL only: the test watches pg_stat_activity for a backend waiting on a lock."""
    url, drop = await make_database_url("postgresql", tmp_path)
    yield url
    assert drop is not None
    await drop()


async def _a_backend_waits_on_a_lock(conn: AsyncConnection) -> bool:
    # Its own transaction each time: PostgreSQL keeps one snapshot of the activity view
    # for a whole transaction.
    waiting = (
        await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    ).scalar_one()
    await conn.rollback()
    return bool(waiting)


async def test_a_claim_waits_for_the_job_before_it_locks_any_chunk(
    client: httpx.AsyncClient,
    owner_token: str,
    owner: Member,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert owner.org_id is not None
    await register_rules_model(client, owner_token)
    _hold_messages(monkeypatch)
    job_id = uuid.UUID(await _submitted(client, owner_token))
    engine = app.state.database.engine
    jobs, chunks = Job.__table__, JobChunk.__table__

    async with engine.connect() as holder, engine.connect() as prober:
        await holder.begin()
        await holder.execute(select(jobs.c.id).where(jobs.c.id == job_id).with_for_update())
        claim = asyncio.create_task(
            app.state.jobs.runner._claim(OrganisationScope(owner.org_id), job_id)
        )
        deadline = time.monotonic() + 30
        while not await _a_backend_waits_on_a_lock(prober):
            assert time.monotonic() < deadline, "the claim never waited for the job's row"
            assert not claim.done(), "the claim did not wait for the job's row"
            await asyncio.sleep(0.02)

        # The claim is waiting; none of the job's chunks is locked by it.
        await prober.begin()
        try:
            locked = await prober.execute(
                select(chunks.c.id).where(chunks.c.job_id == job_id).with_for_update(nowait=True)
            )
        except DBAPIError as exc:
            pytest.fail(f"the waiting claim already holds a chunk: {exc.orig}")
        assert len(locked.all()) > 0
        await prober.rollback()

        await holder.commit()
        taken = await asyncio.wait_for(claim, 30)
    assert taken is not None
    assert taken.chunk.number == 0
