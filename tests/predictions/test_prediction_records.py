"""Prediction records: paging, filters, PII modes, and nothing lost at shutdown."""

from __future__ import annotations

import asyncio
import base64
import copy
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncmy
import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from assay.app import create_app
from assay.core.tenancy import across_tenants
from assay.predictions.models import PredictionRecord
from assay.predictions.records import PredictionRecorder, read_private_inputs
from assay.settings import Settings
from tests.support.identity import MakeMember, login
from tests.support.models import RULES_MANIFEST, auth, register_rules_model

PASSING = {"amount": 5000, "country": "GB"}  # both rules fire: PASS
FAILING = {"amount": 10, "country": "US"}  # none fires: FAIL
PLUS_TWO = timezone(timedelta(hours=2))


async def _predict_batch(
    client: httpx.AsyncClient, token: str, records: list[dict[str, Any]]
) -> None:
    response = await client.post(
        "/v1/models/fraud-rules/predict", json={"records": records}, headers=auth(token)
    )
    assert response.status_code == 200, response.text


async def _all_pages(
    client: httpx.AsyncClient, token: str, query: str, limit: int
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        url = f"/v1/predictions?limit={limit}{query}"
        if cursor is not None:
            url += f"&cursor={cursor}"
        page = await client.get(url, headers=auth(token))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        cursor = body["next_cursor"]
        pages += 1
        assert pages < 100
        if cursor is None:
            return items


async def test_paging_returns_every_record_once_even_when_a_flush_shares_one_time(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    await register_rules_model(client, owner_token)
    # Each batch is recorded by one add(): its rows share one created_at.
    await _predict_batch(client, owner_token, [PASSING] * 7)
    await _predict_batch(client, owner_token, [FAILING] * 5)
    await app.state.predictions.recorder.flush()

    items = await _all_pages(client, owner_token, "", limit=3)
    ids = [item["id"] for item in items]
    assert len(ids) == 12
    assert len(set(ids)) == 12
    times = [datetime.fromisoformat(item["created_at"]) for item in items]
    assert times == sorted(times, reverse=True)
    # A page size that divides the total exactly ends with an empty-cursor page, not an
    # empty page.
    exact = await client.get("/v1/predictions?limit=12", headers=auth(owner_token))
    assert len(exact.json()["items"]) == 12
    assert exact.json()["next_cursor"] is None


async def test_label_and_model_filters_page_too(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    await register_rules_model(client, owner_token)
    await register_rules_model(client, owner_token, name="other-rules")
    await _predict_batch(client, owner_token, [PASSING, FAILING, PASSING, FAILING, PASSING])
    other = await client.post(
        "/v1/models/other-rules/predict", json={"record": PASSING}, headers=auth(owner_token)
    )
    assert other.status_code == 200
    await app.state.predictions.recorder.flush()

    passing = await _all_pages(client, owner_token, "&model=fraud-rules&label=PASS", limit=2)
    assert len(passing) == 3
    assert {item["label"] for item in passing} == {"PASS"}
    assert {item["model_name"] for item in passing} == {"fraud-rules"}
    failing = await _all_pages(client, owner_token, "&label=FAIL", limit=2)
    assert len(failing) == 2
    everything = await _all_pages(client, owner_token, "", limit=50)
    assert len(everything) == 6


async def test_time_filters_need_a_zone_and_select_by_time(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    await register_rules_model(client, owner_token)
    await _predict_batch(client, owner_token, [PASSING, FAILING])
    await app.state.predictions.recorder.flush()
    now = datetime.now(UTC)

    def at(moment: datetime) -> str:
        return moment.isoformat().replace("+00:00", "Z")

    past, future = at(now - timedelta(hours=1)), at(now + timedelta(hours=1))
    for query, expected in (
        (f"since={past}", 2),
        (f"since={future}", 0),
        (f"until={past}", 0),
        (f"until={future}", 2),
        (f"since={past}&until={future}", 2),
        # Another offset, the same instant.
        (f"since={(now - timedelta(hours=1)).astimezone(PLUS_TWO).isoformat()}", 2),
    ):
        page = await client.get(
            f"/v1/predictions?{query.replace('+', '%2B')}", headers=auth(owner_token)
        )
        assert page.status_code == 200, (query, page.text)
        assert len(page.json()["items"]) == expected, query

    naive = await client.get("/v1/predictions?since=2000-01-01T00:00:00", headers=auth(owner_token))
    assert naive.status_code == 422
    assert naive.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in naive.json()["errors"]] == ["query.since"]
    naive_until = await client.get(
        "/v1/predictions?until=2000-01-01T00:00:00", headers=auth(owner_token)
    )
    assert naive_until.status_code == 422
    assert [e["field"] for e in naive_until.json()["errors"]] == ["query.until"]


async def test_a_cursor_that_was_not_given_out_is_a_422(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    for cursor in ("nonsense", "bm90IGEgY3Vyc29y", "MjAwMC0wMS0wMVQwMDowMDowMHx6eno"):
        page = await client.get(f"/v1/predictions?cursor={cursor}", headers=auth(owner_token))
        assert page.status_code == 422, cursor
        assert page.json()["errors"][0]["field"] == "query.cursor"


# The first and the last instants a date-time can spell, whose UTC equivalents fall
# outside the years 1-9999 (once an OverflowError, a 500, when bound as UTC).
BEYOND_THE_CALENDAR = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")


async def test_time_filters_and_cursors_beyond_the_calendar_are_a_422(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    for moment in BEYOND_THE_CALENDAR:
        for name in ("since", "until"):
            page = await client.get(
                "/v1/predictions", params={name: moment}, headers=auth(owner_token)
            )
            assert page.status_code == 422, (name, moment, page.text)
            [error] = page.json()["errors"]
            assert error["field"] == f"query.{name}"
            assert "out of range" in error["message"]
        forged = base64.urlsafe_b64encode(f"{moment}|{uuid.uuid4().hex}".encode()).decode()
        page = await client.get(
            "/v1/predictions", params={"cursor": forged}, headers=auth(owner_token)
        )
        assert page.status_code == 422, (moment, page.text)
        assert page.json()["errors"][0]["field"] == "query.cursor"
    # The same calendar's edges in UTC itself are fine.
    for name, moment in (("since", "0001-01-01T00:00:00Z"), ("until", "9999-12-31T23:59:59Z")):
        page = await client.get("/v1/predictions", params={name: moment}, headers=auth(owner_token))
        assert page.status_code == 200, (name, page.text)


async def test_records_are_scoped_to_the_organisation(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, make_member: MakeMember
) -> None:
    await register_rules_model(client, owner_token)
    await _predict_batch(client, owner_token, [PASSING, FAILING])
    await app.state.predictions.recorder.flush()
    stranger = await make_member(role="owner")
    token = (await login(client, stranger))["access_token"]
    page = await client.get("/v1/predictions", headers=auth(token))
    assert page.status_code == 200
    assert page.json() == {"items": [], "next_cursor": None}


async def _stored_records(app: FastAPI) -> list[PredictionRecord]:
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(across_tenants(select(PredictionRecord), "test reads records"))
        return list(rows.scalars())


@pytest.mark.parametrize("mode", ["encrypt", "drop"])
async def test_pii_fields_are_encrypted_or_dropped_per_model(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, mode: str
) -> None:
    manifest = copy.deepcopy(RULES_MANIFEST)
    manifest["records"] = {"pii": mode}
    await register_rules_model(client, owner_token, manifest=manifest)
    response = await client.post(
        "/v1/models/fraud-rules/predict",
        json={"record": {**PASSING, "email": "grace@example.org"}},
        headers=auth(owner_token),
    )
    assert response.status_code == 200
    await app.state.predictions.recorder.flush()
    [record] = await _stored_records(app)
    assert record.inputs == PASSING
    if mode == "drop":
        assert record.inputs_encrypted is None
    else:
        assert record.inputs_encrypted is not None
        assert b"grace@example.org" not in record.inputs_encrypted
        private = read_private_inputs(app.state.identity.keyring, record)
        assert private == {"email": "grace@example.org"}


async def test_an_unknown_pii_mode_is_refused(client: httpx.AsyncClient, owner_token: str) -> None:
    manifest = copy.deepcopy(RULES_MANIFEST)
    manifest["records"] = {"pii": "keep"}
    refused = await register_rules_model(client, owner_token, manifest=manifest)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "manifest.records.pii"


# --- shutdown ----------------------------------------------------------------------------


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], database_url: str) -> Settings:
    # Records wait in the buffer (no timed flush during a test): only shutdown writes them.
    return settings_factory(database_url=database_url, prediction_flush_interval_seconds=60)


async def test_buffered_records_are_written_when_the_app_shuts_down(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, settings: Settings
) -> None:
    await register_rules_model(client, owner_token)
    second = create_app(settings)
    async with second.router.lifespan_context(second):
        transport = httpx.ASGITransport(app=second, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for _ in range(3):
                await _predict_batch(http, owner_token, [PASSING, FAILING])
        assert second.state.predictions.recorder.pending == 6
        assert await _stored_records(app) == []
    assert len(await _stored_records(app)) == 6


@asynccontextmanager
async def _table_locked(database_url: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold a real write lock on the records table; yields the function that releases it."""
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(
            database_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
        )
        connection.execute("BEGIN IMMEDIATE")
        released = False

        async def release_sqlite() -> None:
            nonlocal released
            if not released:
                released = True
                connection.execute("ROLLBACK")

        try:
            yield release_sqlite
        finally:
            await release_sqlite()
            connection.close()
        return
    if database_url.startswith("mysql"):
        url = make_url(database_url)
        connection_my = await asyncmy.connect(
            host=url.host, port=url.port or 3306, user=url.username, db=url.database
        )
        async with connection_my.cursor() as cursor:
            await cursor.execute("LOCK TABLES prediction_records WRITE")
        unlocked = False

        async def release_mariadb() -> None:
            nonlocal unlocked
            if not unlocked:
                unlocked = True
                async with connection_my.cursor() as cursor:
                    await cursor.execute("UNLOCK TABLES")

        try:
            yield release_mariadb
        finally:
            await release_mariadb()
            connection_my.close()
        return
    connection_pg = await asyncpg.connect(database_url)
    transaction = connection_pg.transaction()
    await transaction.start()
    await connection_pg.execute("LOCK TABLE prediction_records IN EXCLUSIVE MODE")
    done = False

    async def release_pg() -> None:
        nonlocal done
        if not done:
            done = True
            await transaction.rollback()

    try:
        yield release_pg
    finally:
        await release_pg()
        await connection_pg.close()


def _row(org_id: uuid.UUID, index: int) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "model_id": uuid.uuid4(),
        "model_name": "slow",
        "version_id": uuid.uuid4(),
        "version": 1,
        "content_digest": "0" * 64,
        "principal_kind": "user",
        "principal_id": "test",
        "request_id": f"r{index}",
        "inputs": {"i": index},
        "inputs_encrypted": None,
        "derived": {},
        "score": 0.5,
        "label": None,
        "risk": None,
        "latency_ms": 1.0,
    }


async def test_a_flush_running_at_shutdown_finishes_instead_of_losing_its_batch(
    app: FastAPI, settings: Settings, database_url: str, make_member: MakeMember
) -> None:
    member = await make_member(role="owner")
    assert member.org_id is not None
    recorder = PredictionRecorder(
        settings.model_copy(update={"prediction_flush_max_rows": 1}),
        app.state.database.sessionmaker,
    )
    recorder.start()
    async with _table_locked(database_url) as release:
        recorder.add([_row(member.org_id, i) for i in range(5)])
        # The background flush takes the batch off the buffer, then waits on the lock.
        while recorder.pending:  # noqa: ASYNC110 - the recorder's own task empties it
            await asyncio.sleep(0.01)
        stopping = asyncio.create_task(recorder.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done()
        recorder.add([_row(member.org_id, 5)])  # arrives during shutdown: written too
        await release()
        await stopping
    async with app.state.database.sessionmaker() as db:
        count = await db.execute(
            across_tenants(
                select(func.count())
                .select_from(PredictionRecord)
                .where(PredictionRecord.model_name == "slow"),
                "test counts records",
            )
        )
        assert count.scalar_one() == 6
    assert recorder.pending == 0
