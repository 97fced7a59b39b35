"""One application, its lifespan run more than once, each time in a new event loop (as
`assay serve --reload`, an embedding host, or a test harness does).

Found in review: the prediction recorder's event and lock belonged to the first loop, so
in the second lifespan its background task died, stopping it raised before the final
flush (the buffered records were lost), and since that was the first shutdown step
nothing after it ran: mail, cache and the database pool were left open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.pool import Pool

from assay.app import create_app
from assay.core.db import Database
from assay.core.tenancy import across_tenants
from assay.predictions.models import PredictionRecord
from assay.settings import Settings
from tests.support.identity import Member, login, new_member
from tests.support.models import auth, register_rules_model

ROWS = [{"amount": 5000, "country": "GB"}, {"amount": 10, "country": "US"}]


async def _stored(settings: Settings) -> int:
    # A database of its own: the app's is closed between lifespans.
    database = Database(settings)
    try:
        async with database.sessionmaker() as db:
            counted = await db.execute(
                across_tenants(
                    select(func.count()).select_from(PredictionRecord), "test counts records"
                )
            )
            return int(counted.scalar_one())
    finally:
        await database.dispose()


async def _connections_to(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        name = database_url.rsplit("/", 1)[-1]
        count = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        return int(count)
    finally:
        await connection.close()


async def _serve_once(app: FastAPI, member: Member | None) -> tuple[Member, Pool]:
    """Start the lifespan, score concurrently on a cold model cache, stop."""
    async with app.router.lifespan_context(app):
        pool = app.state.database.engine.pool
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            if member is None:
                member = await new_member(app)
                token = (await login(http, member))["access_token"]
                deployed = await register_rules_model(http, token)
                assert deployed.status_code == 201, deployed.text
            token = (await login(http, member))["access_token"]
            # Cold: concurrent requests resolve the alias together, then wait for one
            # load of the version (the model cache's per-version lock), as after an
            # eviction or a worker start.
            cache = app.state.registry.cache
            for entry in cache.loaded():
                cache.evict(entry.version_id)
            assert member.org_id is not None
            app.state.predictions.forget(member.org_id, "fraud-rules")
            answers = await asyncio.gather(
                *(
                    http.post(
                        "/v1/models/fraud-rules/predict",
                        json={"records": ROWS},
                        headers=auth(token),
                    )
                    for _ in range(4)
                )
            )
            assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
            # Single records go through the micro-batcher.
            single = await http.post(
                "/v1/models/fraud-rules/predict", json={"record": ROWS[0]}, headers=auth(token)
            )
            assert single.status_code == 200, single.text
    return member, pool


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], database_url: str) -> Settings:
    # Two rows wake the background flush; the rest waits for shutdown.
    return settings_factory(
        database_url=database_url,
        prediction_flush_interval_seconds=60,
        prediction_flush_max_rows=2,
    )


def test_each_lifespan_in_a_new_loop_records_everything_and_closes_the_database(
    settings: Settings, database_url: str
) -> None:
    app = create_app(settings)
    member: Member | None = None
    for cycle in (1, 2, 3):
        member, pool = asyncio.run(_serve_once(app, member))
        assert asyncio.run(_stored(settings)) == 9 * cycle
        # The pool was disposed (replaced), and nothing is connected any more.
        assert app.state.database.engine.pool is not pool
        if database_url.startswith("postgresql"):
            assert asyncio.run(_connections_to(database_url)) == 0


def test_a_failing_shutdown_step_does_not_skip_the_others(
    settings: Settings, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    async def broken() -> Any:
        msg = "mail relay went away"
        raise ConnectionError(msg)

    app.state.identity.mail.aclose = broken
    member, pool = asyncio.run(_serve_once(app, None))
    assert member is not None
    # Records (flushed first) and the database pool (closed last) were both handled.
    assert asyncio.run(_stored(settings)) == 9
    assert app.state.database.engine.pool is not pool
    if database_url.startswith("postgresql"):
        assert asyncio.run(_connections_to(database_url)) == 0
    failures = [r for r in caplog.records if "shutdown_step_failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert "mail" in failures[0].getMessage()
    assert "stopped" in caplog.text
