"""Authentication when the shared cache is down: the database decides, nothing is a 500.

With Redis gone, bearer tokens, API keys and console cookies are checked against the
database on every request (revocation stays exact), the failures are counted and
logged, and the rate limiter's per-class fail-open setting decides what passes. Run
against a redis-server of the test's own that is stopped mid-test, and against an
in-process cache whose every operation raises, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from assay.app import create_app
from assay.core.cache import InProcessCache
from assay.settings import Settings
from tests.support.identity import PrivateRedis, bearer, login, new_member

from ..conftest import KNOWN_SECRETS

OPEN = ["default", "management", "scoring"]


def cache_errors(operation: str) -> float:
    return REGISTRY.get_sample_value("assay_auth_cache_errors_total", {"operation": operation}) or 0


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


async def _credentials(app: FastAPI, client: httpx.AsyncClient) -> dict[str, Any]:
    """An owner signed in twice (one session to keep, one to end) and an API key."""
    owner = await new_member(app)
    kept = (await login(client, owner))["access_token"]
    ended = (await login(client, owner))["access_token"]
    created = await client.post(
        "/v1/org/api-keys",
        json={"name": "reader", "scopes": ["members:read"]},
        headers=bearer(kept),
    )
    assert created.status_code == 201, created.text
    KNOWN_SECRETS.add(created.json()["key"])
    sessions = (await client.get("/v1/me/sessions", headers=bearer(ended))).json()
    ended_id = next(s["id"] for s in sessions if s["current"])
    return {
        "kept": bearer(kept),
        "ended": bearer(ended),
        "ended_id": ended_id,
        "key": {"x-api-key": created.json()["key"]},
        "key_id": created.json()["id"],
    }


async def _status(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get("/v1/org/members", headers=headers)).status_code


async def _authentication_without_the_cache(
    client: httpx.AsyncClient, creds: dict[str, Any]
) -> None:
    """What must hold while the cache fails: access from the database, revocations exact."""
    assert await _status(client, creds["kept"]) == 200
    assert await _status(client, creds["key"]) == 200
    assert (await client.get("/v1/me", headers=creds["ended"])).status_code == 200
    ended = await client.delete(f"/v1/me/sessions/{creds['ended_id']}", headers=creds["kept"])
    assert ended.status_code == 204, ended.text
    revoked = await client.delete(f"/v1/org/api-keys/{creds['key_id']}", headers=creds["kept"])
    assert revoked.status_code == 204, revoked.text
    # Refused at once, although no revoked marker could be written.
    assert await _status(client, creds["ended"]) == 401
    assert await _status(client, creds["key"]) == 401
    assert await _status(client, creds["kept"]) == 200


async def test_with_redis_stopped_requests_are_authenticated_from_the_database(
    settings_factory: Callable[..., Settings],
    database_url: str,
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_factory(
        database_url=database_url,
        redis_url=private_redis.url,
        rate_limit_fail_open_classes=OPEN,
        rate_limit_redis_timeout_seconds=0.5,
        health_check_timeout_seconds=0.5,
    )
    async with serving(settings) as (app, client):
        creds = await _credentials(app, client)
        # Cached while Redis is up.
        assert await _status(client, creds["kept"]) == 200
        assert await _status(client, creds["key"]) == 200
        reads, stores, revokes = (cache_errors(op) for op in ("read", "store", "revoke"))

        private_redis.stop()
        with caplog.at_level(logging.WARNING, logger="assay.authn"):
            await _authentication_without_the_cache(client, creds)
        assert cache_errors("read") > reads
        assert cache_errors("revoke") > revokes
        # After a failed read, the store is skipped rather than tried and failed.
        assert cache_errors("store") == stores
        assert caplog.text.count("auth_cache_unavailable") == 1  # throttled


class BrokenCache(InProcessCache):
    """An in-process cache that has lost its backend: every operation raises."""

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("cache unreachable")

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        raise ConnectionError("cache unreachable")

    async def set_if_absent(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        raise ConnectionError("cache unreachable")


async def test_with_a_cache_that_raises_requests_are_authenticated_from_the_database(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    settings = settings_factory(database_url=database_url, rate_limit_fail_open_classes=OPEN)
    async with serving(settings) as (app, client):
        creds = await _credentials(app, client)
        identity = app.state.identity
        healthy = identity.authenticator.cache
        identity.authenticator.cache = BrokenCache(10)
        try:
            await _authentication_without_the_cache(client, creds)
        finally:
            identity.authenticator.cache = healthy
