"""A sealed chain verifies; an edited, deleted, reordered or cut one fails and says where."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import delete, update

from assay.audit.models import SecurityEvent
from assay.audit_trail.chain import Report
from assay.audit_trail.models import ChainHead, Checkpoint
from assay.audit_trail.sealing import Sealer
from assay.audit_trail.service import verify_chain
from tests.support.identity import MakeMember

from .conftest import chain_rows, write_events


async def _sealed_org(
    app: FastAPI, make_member: MakeMember, sealer: Sealer, count: int
) -> uuid.UUID:
    member = await make_member()
    assert member.org_id is not None
    await write_events(app, member.org_id, count)
    await sealer.chain_pending()
    return member.org_id


async def _verify(app: FastAPI, sealer: Sealer, org_id: uuid.UUID | None) -> Report:
    return await verify_chain(sealer, org_id)


async def _change(app: FastAPI, *statements: object) -> None:
    async with app.state.database.sessionmaker() as db:
        for statement in statements:
            await db.execute(statement)  # type: ignore[call-overload]
        await db.commit()


async def test_sealing_numbers_every_event_from_one_without_gaps(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 6)
    await write_events(app, org_id, 3)
    await sealer.chain_pending()
    rows = await chain_rows(app, org_id)
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert all(row.hash and row.prev_hash for row in rows)
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, len(rows)))
    report = await _verify(app, sealer, org_id)
    assert report.ok, report.problem
    assert report.events == len(rows)
    assert report.head_seq == len(rows)


async def test_platform_events_form_a_chain_of_their_own(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 2)
    await write_events(app, None, 4)
    await sealer.chain_pending()
    platform = await chain_rows(app, None)
    assert [row.seq for row in platform] == list(range(1, len(platform) + 1))
    assert (await _verify(app, sealer, None)).ok
    assert (await _verify(app, sealer, org_id)).ok


async def test_an_edited_event_is_named(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 5)
    victim = (await chain_rows(app, org_id))[3]
    await _change(
        app,
        update(SecurityEvent).where(SecurityEvent.id == victim.id).values(outcome="failure"),
    )
    report = await _verify(app, sealer, org_id)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("edited", victim.seq)
    assert report.problem.event_id == str(victim.id)


async def test_a_deleted_event_is_named(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 5)
    rows = await chain_rows(app, org_id)
    await _change(app, delete(SecurityEvent).where(SecurityEvent.id == rows[2].id))
    report = await _verify(app, sealer, org_id)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("deleted", 3)
    assert report.problem.event_id == str(rows[3].id)  # the first one after the gap


async def test_two_swapped_events_are_named(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 5)
    rows = await chain_rows(app, org_id)
    first, second = rows[2], rows[3]
    await _change(
        app,
        update(SecurityEvent).where(SecurityEvent.id == first.id).values(seq=-1),
        update(SecurityEvent).where(SecurityEvent.id == second.id).values(seq=first.seq),
        update(SecurityEvent).where(SecurityEvent.id == first.id).values(seq=second.seq),
    )
    report = await _verify(app, sealer, org_id)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("reordered", first.seq)
    assert report.problem.event_id == str(second.id)


async def test_a_cut_tail_is_found_from_the_head(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 5)
    rows = await chain_rows(app, org_id)
    kept = len(rows) - 2
    await _change(
        app, delete(SecurityEvent).where(SecurityEvent.id.in_([r.id for r in rows[kept:]]))
    )
    report = await _verify(app, sealer, org_id)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("truncated", kept + 1)


async def test_a_cut_tail_with_a_rewound_head_is_found_back_to_the_last_checkpoint(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 3)
    await sealer.checkpoint_now(org_id)
    signed = len(await chain_rows(app, org_id))
    await write_events(app, org_id, 3)
    await sealer.chain_pending()
    rows = await chain_rows(app, org_id)
    kept = signed - 2
    await _change(
        app,
        delete(SecurityEvent).where(SecurityEvent.id.in_([r.id for r in rows[kept:]])),
        # Whoever cut the tail can rewrite the head too; only the signature holds.
        update(ChainHead)
        .where(ChainHead.chain == str(org_id))
        .values(seq=kept, hash=rows[kept - 1].hash),
    )
    report = await _verify(app, sealer, org_id)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("truncated", kept + 1)
    assert f"covers {signed} events" in report.problem.message


async def test_a_forged_checkpoint_is_refused(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 3)
    await sealer.checkpoint_now(org_id)
    rows = await chain_rows(app, org_id)
    await _change(
        app,
        update(Checkpoint).where(Checkpoint.chain == str(org_id)).values(seq=len(rows) + 5),
    )
    report = await _verify(app, sealer, org_id)
    assert report.problem is not None
    assert report.problem.kind == "checkpoint"
    assert "not valid" in report.problem.message


async def test_checkpoints_are_signed_every_n_events(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 0)
    every = app.state.settings.audit_checkpoint_every
    await write_events(app, org_id, every)
    await sealer.chain_pending()
    report = await _verify(app, sealer, org_id)
    assert report.ok, report.problem
    assert report.checkpoints >= 1
    assert report.last_checkpoint_seq == report.head_seq


async def test_an_overdue_chain_gets_a_checkpoint_at_its_head(
    app: FastAPI, make_member: MakeMember, sealer: Sealer
) -> None:
    org_id = await _sealed_org(app, make_member, sealer, 2)
    await write_events(app, org_id, 3)
    await sealer.chain_pending()
    head_seq = len(await chain_rows(app, org_id))
    assert await sealer.checkpoint_overdue() == 0  # the last one is recent
    # The last checkpoint was signed long ago (the head row says so; no clock is waited on).
    await _change(
        app,
        update(ChainHead)
        .where(ChainHead.chain == str(org_id))
        .values(checkpoint_at=datetime(2000, 1, 1, tzinfo=UTC)),
    )
    assert await sealer.checkpoint_overdue() == 1
    report = await _verify(app, sealer, org_id)
    assert report.ok, report.problem
    assert report.last_checkpoint_seq == head_seq
