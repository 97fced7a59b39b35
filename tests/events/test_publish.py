"""Events exist exactly when their cause committed; listeners hear of them only then."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from assay.audit.service import RequestMeta
from assay.core.tenancy import OrganisationScope, across_tenants, scoped
from assay.events import service as events
from assay.events.models import Event
from assay.registry.health import mark_unhealthy
from assay.registry.models import ModelVersion
from tests.support.identity import MakeMember, Member
from tests.support.models import register_rules_model


@pytest.fixture
def heard() -> Iterator[list[events.Published]]:
    received: list[events.Published] = []
    events.listen("test", received.append)
    yield received
    events.unlisten("test")


def org_of(member: Member) -> uuid.UUID:
    assert member.org_id is not None
    return member.org_id


async def _events(app: FastAPI, org_id: uuid.UUID) -> list[Event]:
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(scoped(OrganisationScope(org_id), Event).order_by(Event.created_at))
        return list(rows.scalars())


async def test_an_event_is_recorded_and_heard_only_when_its_transaction_commits(
    app: FastAPI, owner: Member, heard: list[events.Published]
) -> None:
    async with app.state.database.sessionmaker() as db:
        await events.publish(
            db, org_id=org_of(owner), type="job.failed", data={"job_id": "rolled-back"}
        )
        await db.rollback()
    assert heard == []
    assert await _events(app, org_of(owner)) == []

    async with app.state.database.sessionmaker() as db:
        event_id = await events.publish(
            db, org_id=org_of(owner), type="job.succeeded", data={"job_id": "j-1", "rows": 3}
        )
        assert heard == []  # not before the commit
        await db.commit()
    [published] = heard
    assert (published.id, published.org_id, published.type) == (
        event_id,
        org_of(owner),
        "job.succeeded",
    )
    [stored] = await _events(app, org_of(owner))
    assert (stored.id, stored.type, stored.data) == (
        event_id,
        "job.succeeded",
        {"job_id": "j-1", "rows": 3},
    )


async def test_unknown_types_and_unserialisable_data_are_refused_at_the_call(
    app: FastAPI, owner: Member
) -> None:
    async with app.state.database.sessionmaker() as db:
        with pytest.raises(ValueError, match="unknown event type"):
            await events.publish(db, org_id=org_of(owner), type="job.exploded", data={})
        with pytest.raises(ValueError, match="JSON compliant"):
            await events.publish(
                db, org_id=org_of(owner), type="job.failed", data={"score": float("nan")}
            )
        with pytest.raises(TypeError):
            await events.publish(db, org_id=org_of(owner), type="job.failed", data={"at": object()})


def test_packs_register_their_own_event_types_once() -> None:
    name = f"pack{uuid.uuid4().hex[:8]}.verdict_changed"
    registered = events.register_event_type(name, "A verdict changed.")
    assert events.register_event_type(name, "A verdict changed.") == registered
    assert events.event_types()[name].description == "A verdict changed."
    with pytest.raises(ValueError, match="already registered"):
        events.register_event_type(name, "Something else.")
    with pytest.raises(ValueError, match="lower-case"):
        events.register_event_type("Verdict Changed", "Spaces and capitals.")


def test_a_failing_listener_does_not_stop_the_others(heard: list[events.Published]) -> None:
    def broken(_: events.Published) -> None:
        raise RuntimeError("listener bug")

    events.listen("broken", broken)
    try:
        published = events.Published(uuid.uuid4(), uuid.uuid4(), "job.failed", events.utcnow())
        events._notify(published)
    finally:
        events.unlisten("broken")
    assert heard == [published]


async def test_the_registry_announces_versions_alias_moves_and_unhealthy_versions(
    client: httpx.AsyncClient,
    owner_token: str,
    owner: Member,
    make_member: MakeMember,
    app: FastAPI,
) -> None:
    other = await make_member(role="owner")
    assert (await register_rules_model(client, owner_token)).status_code == 201
    recorded = await _events(app, org_of(owner))
    assert [event.type for event in recorded] == ["model.version_created", "model.alias_moved"]
    created, moved = recorded
    assert (created.data["model"], created.data["version"]) == ("fraud-rules", 1)
    assert moved.data == {"model": "fraud-rules", "alias": "production", "before": None, "after": 1}

    async with app.state.database.sessionmaker() as db:
        version = (
            await db.execute(across_tenants(select(ModelVersion), "test: the only version"))
        ).scalar_one()
        await mark_unhealthy(db, RequestMeta(), version, "fraud-rules", reason="checked elsewhere")
        await db.commit()
    unhealthy = (await _events(app, org_of(owner)))[-1]
    assert unhealthy.type == "model.unhealthy"
    assert unhealthy.data["reason"] == "checked elsewhere"
    # Another organisation sees none of it.
    assert await _events(app, org_of(other)) == []
