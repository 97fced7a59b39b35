"""Several OS processes write to one organisation's chain while each runs the sealer."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from assay.app import create_app
from assay.audit.models import SecurityAction
from assay.audit.service import CLI, record_event
from assay.audit_trail.service import build_sealer, verify_chain
from assay.core.db import Database
from assay.settings import Settings
from tests.support.identity import new_member

from ..conftest import make_migrated_database_url
from .conftest import chain_rows

PROCESSES = 4
ROUNDS = 10
PER_ROUND = 3


def _write_and_seal(values: dict[str, Any], org_id: str, start: Any) -> None:
    """One process: write events in small transactions, sealing after each."""

    async def run() -> None:
        settings = Settings(**values)
        database = Database(settings)
        sealer = build_sealer(settings, database.sessionmaker)
        organisation = uuid.UUID(org_id)
        try:
            for round_number in range(ROUNDS):
                async with database.sessionmaker() as db:
                    for number in range(PER_ROUND):
                        record_event(
                            db,
                            CLI,
                            action=SecurityAction.ORG_UPDATED,
                            actor_kind="platform",
                            org_id=organisation,
                            details={"round": round_number, "number": number},
                        )
                    await db.commit()
                await sealer.chain_pending(organisation, every=False)
        finally:
            await database.dispose()

    start.wait(60)
    asyncio.run(run())


@pytest.fixture(params=["postgresql", "mariadb"])
async def server_app(
    request: pytest.FixtureRequest, tmp_path: Path, settings_factory: Callable[..., Settings]
) -> AsyncIterator[FastAPI]:
    url, drop = await make_migrated_database_url(request.param, tmp_path)
    application = create_app(settings_factory(database_url=url, audit_checkpoint_every=25))
    try:
        async with application.router.lifespan_context(application):
            yield application
    finally:
        if drop is not None:
            await drop()


async def test_processes_writing_and_sealing_at_once_leave_a_gap_free_chain(
    server_app: FastAPI,
) -> None:
    member = await new_member(server_app)
    assert member.org_id is not None
    settings: Settings = server_app.state.settings
    values = {
        "env": "test",
        "data_dir": settings.data_dir,
        "database_url": settings.effective_database_url,
        "metrics_port": 0,
        "encryption_key": settings.encryption_key.get_secret_value(),  # type: ignore[union-attr]
        "token_signing_key": settings.token_signing_key.get_secret_value(),  # type: ignore[union-attr]
        "session_secret": settings.session_secret.get_secret_value(),  # type: ignore[union-attr]
        "audit_checkpoint_every": 25,
        "audit_chain_batch_size": 7,
    }
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=_write_and_seal, args=(values, str(member.org_id), start))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    try:
        for worker in workers:
            await asyncio.to_thread(worker.join, 180)
            assert worker.exitcode == 0, worker.exitcode
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
    sealer = server_app.state.audit_trail
    await sealer.chain_pending()
    rows = await chain_rows(server_app, member.org_id)
    written = [row for row in rows if row.action == SecurityAction.ORG_UPDATED]
    assert len(written) == PROCESSES * ROUNDS * PER_ROUND
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    report = await verify_chain(sealer, member.org_id)
    assert report.ok, report.problem
    assert report.events == len(rows)
    assert report.checkpoints >= 1
