"""Per-organisation scoring quotas: set by platform administrators, read from the
database through a short in-process cache, enforced by the rate limiter.

The limiter is exercised with its in-process storage and with Redis; the quota source
itself is in process by design (one query per cache lifetime, however many requests).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from typer.testing import CliRunner

from assay.app import create_app
from assay.cli import app as cli_app
from assay.orgs.models import Organisation
from assay.orgs.quotas import DatabaseQuotaOverrides
from assay.settings import Settings
from tests.support.identity import RunningApp, bearer, events, new_member, platform_admin_token

from ..security.conftest import probe_router

pytestmark = pytest.mark.usefixtures("steady_rate_window")


def _maker(app: FastAPI) -> Callable[..., Any]:
    async def make(**options: Any) -> Any:
        return await new_member(app, **options)

    return make


async def _score(client: httpx.AsyncClient, org_id: object) -> int:
    # The probe route charges the scoring class for the organisation in x-test-org, just
    # as a predict route does for its principal's organisation.
    response = await client.get("/probe/score", headers={"x-test-org": str(org_id)})
    return response.status_code


@asynccontextmanager
async def _with_probe(
    running_app: RunningApp, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(**overrides) as (app, client):
        app.include_router(probe_router)
        yield app, client


async def test_a_platform_admin_sets_and_clears_an_org_quota(running_app: RunningApp) -> None:
    async with _with_probe(running_app) as (app, client):
        member = await new_member(app)
        neighbour = await new_member(app)
        admin = await platform_admin_token(client, _maker(app))
        set_quota = await client.patch(
            f"/v1/admin/orgs/{member.org_id}",
            json={"scoring_quota": " 2/minute "},
            headers=bearer(admin),
        )
        assert set_quota.status_code == 200, set_quota.text
        assert set_quota.json()["scoring_quota"] == "2/minute"
        # Applied by this process at once; the neighbour keeps the default.
        assert [await _score(client, member.org_id) for _ in range(3)] == [200, 200, 429]
        assert [await _score(client, neighbour.org_id) for _ in range(3)] == [200, 200, 200]
        listed = {
            o["id"]: o for o in (await client.get("/v1/admin/orgs", headers=bearer(admin))).json()
        }
        assert listed[str(member.org_id)]["scoring_quota"] == "2/minute"

        cleared = await client.patch(
            f"/v1/admin/orgs/{member.org_id}", json={"scoring_quota": None}, headers=bearer(admin)
        )
        assert cleared.json()["scoring_quota"] is None
        assert await _score(client, member.org_id) == 200
        changes = await events(app, "org.quota_changed", org_id=member.org_id)
        assert [(e.details["before"], e.details["after"]) for e in changes] == [
            (None, "2/minute"),
            ("2/minute", None),
        ]
        assert {e.actor_kind for e in changes} == {"user"}


@pytest.mark.parametrize("quota", ["lots", "0/minute", "10/fortnight", "", "5"])
async def test_a_bad_quota_is_a_clear_422(
    client: httpx.AsyncClient, make_member: Any, quota: str, app: FastAPI
) -> None:
    member = await make_member()
    admin = await platform_admin_token(client, make_member)
    response = await client.patch(
        f"/v1/admin/orgs/{member.org_id}", json={"scoring_quota": quota}, headers=bearer(admin)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] in ("scoring_quota", "body.scoring_quota")
    async with app.state.database.sessionmaker() as db:
        assert (await db.get_one(Organisation, member.org_id)).scoring_quota is None
    assert await events(app, "org.quota_changed") == []
    unknown = await client.patch(
        f"/v1/admin/orgs/{uuid.uuid4()}", json={"scoring_quota": "1/minute"}, headers=bearer(admin)
    )
    assert unknown.status_code == 404


async def test_the_environment_override_still_applies_and_the_database_wins(
    running_app: RunningApp, settings_factory: Callable[..., Settings], database_url: str
) -> None:
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    overrides = {"rate_limit_org_overrides": {str(org_a): "1/minute", str(org_b): "1/minute"}}
    async with _with_probe(running_app, **overrides) as (app, client):
        member = await new_member(app)
        # Organisations named only in the environment get its quota.
        assert [await _score(client, org_a) for _ in range(2)] == [200, 429]
        # One with a quota in the database gets that one instead.
        async with app.state.database.sessionmaker() as db:
            org = await db.get_one(Organisation, member.org_id)
            org.scoring_quota = "3/minute"
            await db.commit()
        app.state.quotas.invalidate()
        assert [await _score(client, member.org_id) for _ in range(4)] == [200, 200, 200, 429]


async def _counting(app: FastAPI) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "scoring_quota" in statement:
            seen.append(statement)

    event.listen(app.state.database.engine.sync_engine, "before_cursor_execute", record)
    return seen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_quotas_are_cached_and_a_stale_copy_is_reloaded_once(
    app: FastAPI, settings: Settings
) -> None:
    member = await new_member(app)
    org_id = str(member.org_id)
    clock = Clock()
    quotas = DatabaseQuotaOverrides(settings, app.state.database.sessionmaker, clock=clock)
    queries = await _counting(app)
    assert await quotas.quota_for(org_id) is None
    assert len(queries) == 1
    # Another process sets a quota: unseen while the copy is fresh...
    async with app.state.database.sessionmaker() as db:
        await db.execute(
            update(Organisation)
            .where(Organisation.id == member.org_id)
            .values(scoring_quota="7/minute")
        )
        await db.commit()
    clock.now += settings.org_quota_cache_seconds - 0.1
    assert [await quotas.quota_for(org_id) for _ in range(50)] == [None] * 50
    assert len(queries) == 1
    # ...and once it is stale, a crowd of requests reloads it with one query.
    clock.now += 0.2
    answers = await asyncio.gather(*(quotas.quota_for(org_id) for _ in range(40)))
    assert answers == ["7/minute"] * 40
    assert len(queries) == 2


async def test_a_change_during_a_reload_is_not_lost(app: FastAPI, settings: Settings) -> None:
    member = await new_member(app)
    loading = asyncio.Event()

    def opening_session() -> Any:
        loading.set()  # the load has begun: whatever it reads may predate a change
        return app.state.database.sessionmaker()

    quotas = DatabaseQuotaOverrides(settings, opening_session, clock=Clock())  # type: ignore[arg-type]
    queries = await _counting(app)
    pending = asyncio.ensure_future(quotas.quota_for(str(member.org_id)))
    await loading.wait()
    quotas.invalidate()  # a change committed while the load was reading
    assert await pending is None
    await quotas.quota_for(str(member.org_id))
    assert len(queries) == 2  # the copy from before the change was not trusted
    await quotas.quota_for(str(member.org_id))
    assert len(queries) == 2  # the reload after it was


async def test_an_unreachable_database_falls_back_without_failing_requests(
    settings: Settings, tmp_path: Any
) -> None:
    org = uuid.uuid4()
    # Nothing listens on port 1: every connection attempt is refused at once.
    engine = create_async_engine("postgresql+asyncpg://assay@127.0.0.1:1/assay")
    try:
        quotas = DatabaseQuotaOverrides(
            settings,
            async_sessionmaker(engine),
            fallback={str(org): "9/minute"},
            clock=Clock(),
        )
        assert await quotas.quota_for(str(org)) == "9/minute"
        assert await quotas.quota_for(str(uuid.uuid4())) is None
    finally:
        await engine.dispose()


async def test_an_operator_sets_the_quota_from_the_cli(app: FastAPI) -> None:
    member = await new_member(app)
    settings = app.state.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(
        {
            "ASSAY_ENV": "test",
            "ASSAY_DATA_DIR": str(settings.data_dir),
            "ASSAY_DATABASE_URL": settings.effective_database_url,
            "ASSAY_ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
            "ASSAY_TOKEN_SIGNING_KEY": settings.token_signing_key.get_secret_value(),
            "ASSAY_SESSION_SECRET": settings.session_secret.get_secret_value(),
        }
    )

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli_app, ["admin", "org", "set-quota", *args], env=env)

    assert member.org_slug is not None
    done = await asyncio.to_thread(run, "--org", member.org_slug, "--quota", "100/minute;1000/day")
    assert done.exit_code == 0, done.output
    assert "100/minute;1000/day" in done.stdout
    async with app.state.database.sessionmaker() as db:
        assert (await db.get_one(Organisation, member.org_id)).scoring_quota == (
            "100/minute;1000/day"
        )
    [changed] = await events(app, "org.quota_changed", org_id=member.org_id)
    assert changed.actor_kind == "platform"
    bad = await asyncio.to_thread(run, "--org", str(member.org_id), "--quota", "lots")
    assert bad.exit_code == 2
    assert "not a quota" in bad.stderr
    neither = await asyncio.to_thread(run, "--org", member.org_slug)
    assert neither.exit_code == 2
    cleared = await asyncio.to_thread(run, "--org", str(member.org_id), "--default")
    assert cleared.exit_code == 0, cleared.output
    async with app.state.database.sessionmaker() as db:
        assert (await db.get_one(Organisation, member.org_id)).scoring_quota is None


async def test_the_app_hands_its_quota_source_to_the_limiter(app: FastAPI) -> None:
    assert app.state.rate_limiter.quotas is app.state.quotas
    _ = create_app
