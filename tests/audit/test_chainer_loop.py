"""The chainer runs inside every process: events written through the API are sealed by
the app's own loop, without anyone asking, and the loop stops with the app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from assay.app import create_app
from assay.audit.models import SecurityEvent
from assay.core.db import Database
from assay.settings import Settings
from tests.support.identity import MakeMember, bearer, login, new_member

from .conftest import chain_rows, write_events

# Bounded polling: the chain is read at most this many times.
POLLS = 2000


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}",
        audit_chainer_enabled=True,
        audit_chain_interval_seconds=0.02,
    )


async def test_the_apps_chainer_seals_new_events(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    member = await make_member()
    token = (await login(client, member))["access_token"]
    renamed = await client.patch(
        "/v1/org", json={"name": "Renamed by the test"}, headers=bearer(token)
    )
    assert renamed.status_code == 200, renamed.text
    for _ in range(POLLS):
        rows = await chain_rows(app, member.org_id)
        if (
            rows
            and all(row.seq is not None for row in rows)
            and any(row.action == "org.updated" for row in rows)
        ):
            break
        await asyncio.sleep(0.01)  # polling the app's own loop, bounded above
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert any(row.action == "org.updated" for row in rows)


async def test_a_stopping_process_seals_what_it_wrote_last(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(
        database_url=f"sqlite:///{tmp_path / 'stopping.db'}",
        audit_chainer_enabled=True,
        audit_chain_interval_seconds=3600,  # no pass of the loop's own after the first
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        member = await new_member(application)
        await write_events(application, member.org_id, 3)
    database = Database(settings)
    try:
        async with database.sessionmaker() as db:
            pending = await db.scalar(
                select(func.count()).select_from(SecurityEvent).where(SecurityEvent.seq.is_(None))
            )
    finally:
        await database.dispose()
    assert pending == 0
