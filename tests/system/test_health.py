from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.accounts import service as accounts
from assay.app import create_app
from assay.audit.service import CLI
from assay.core.cache import RedisCache
from assay.core.principal import PLATFORM
from assay.orgs import service as orgs
from assay.settings import Settings
from tests.support.identity import Member, bearer, known_secret, login, strong_password

from ..conftest import make_database_url


async def test_livez_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_runs_a_real_database_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


async def test_readyz_checks_redis_when_configured(
    settings_factory: Callable[..., Settings], database_url: str, redis_url: str
) -> None:
    app = create_app(settings_factory(database_url=database_url, redis_url=redis_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def _readyz_after_breaking(app: Any, break_it: Callable[[Any], None]) -> httpx.Response:
    async with app.router.lifespan_context(app):
        break_it(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/readyz")


async def test_readyz_names_an_unreachable_redis(
    settings_factory: Callable[..., Settings],
    database_url: str,
    redis_url: str,
    free_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(settings_factory(database_url=database_url, redis_url=redis_url))
    closed_port = RedisCache(f"redis://127.0.0.1:{free_port}/0", 0.5)

    def point_cache_at_closed_port(application: Any) -> None:
        # Redis goes away after start-up: the application's cache now pings a real client
        # of a port where nothing listens.
        monkeypatch.setattr(application.state.cache, "ping", closed_port.ping)

    response = await _readyz_after_breaking(app, point_cache_at_closed_port)
    await closed_port.close()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"] == {"database": "ok", "redis": "unavailable"}
    assert "redis" in body["detail"]
    assert body["type"] == "urn:assay:problem:dependency-unavailable"


async def test_readyz_reports_a_database_that_does_not_answer_in_time(
    settings_factory: Callable[..., Settings], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings_factory(database_url=database_url, health_check_timeout_seconds=0.05))

    def make_ping_hang(application: Any) -> None:
        import asyncio

        async def hang() -> None:
            await asyncio.sleep(5)

        monkeypatch.setattr(application.state.database, "ping", hang)

    response = await _readyz_after_breaking(app, make_ping_hang)
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "timeout"}
    assert "database" in response.json()["detail"]


async def test_the_app_serves_and_writes_on_mariadb(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """The whole application on MariaDB: migrations, readiness, a signed-in write, a read."""
    url, drop = await make_database_url("mariadb", tmp_path)
    assert drop is not None
    try:
        app = create_app(settings_factory(database_url=url))
        assert app.state.database.dialect == "mysql"
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                ready = await http.get("/readyz")
                assert ready.status_code == 200
                assert ready.json()["checks"] == {"database": "ok"}

                password = strong_password()
                async with app.state.database.sessionmaker() as db:
                    user = await accounts.create_user(
                        db, app.state.identity, email="maria@example.org", password=password
                    )
                    org = await orgs.create_organisation(db, CLI, PLATFORM, name="Maria", slug=None)
                    await orgs.add_member(db, CLI, PLATFORM, org.id, user, "owner")
                    await db.commit()
                member = Member("maria@example.org", password, user.id, org.id, org.slug)
                token = (await login(http, member))["access_token"]  # writes a session
                created = await http.post(
                    "/v1/org/api-keys",
                    json={"name": "on-mariadb", "scopes": ["predict"]},
                    headers=bearer(token),
                )
                assert created.status_code == 201, created.text
                known_secret(created.json()["key"])
                listed = await http.get("/v1/org/api-keys", headers=bearer(token))
        assert listed.status_code == 200, listed.text
        assert [key["name"] for key in listed.json()] == ["on-mariadb"]
    finally:
        await drop()
