"""Helpers of the audit trail tests: write events, seal them, tamper with rows."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from assay.audit.models import SecurityAction, SecurityEvent
from assay.audit.service import CLI, record_event
from assay.audit_trail.sealing import Sealer


async def write_events(app: FastAPI, org_id: uuid.UUID | None, count: int) -> None:
    """`count` events in the organisation (or the platform), one transaction."""
    async with app.state.database.sessionmaker() as db:
        for number in range(count):
            record_event(
                db,
                CLI,
                action=SecurityAction.ORG_UPDATED,
                actor_kind="platform",
                org_id=org_id,
                target_kind="organisation",
                target_id=org_id,
                details={"number": number},
            )
        await db.commit()


async def chain_rows(app: FastAPI, org_id: uuid.UUID | None) -> list[SecurityEvent]:
    """The chain's events in sequence order (unsealed ones last)."""
    where = SecurityEvent.org_id.is_(None) if org_id is None else SecurityEvent.org_id == org_id
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(select(SecurityEvent).where(where).order_by(SecurityEvent.seq))
        return list(rows.scalars())


@pytest.fixture
def sealer(app: FastAPI) -> Sealer:
    trail: Sealer = app.state.audit_trail
    return trail


@pytest.fixture
def settings(settings_factory, database_url):  # type: ignore[no-untyped-def]
    """Checkpoints every 20 events, so tests reach one without writing thousands."""
    return settings_factory(database_url=database_url, audit_checkpoint_every=20)
