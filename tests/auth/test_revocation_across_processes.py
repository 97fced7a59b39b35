"""Revocation: on the next request, on every process, and never undone by a race.

Processes that share Redis share the auth-state cache: a revocation on one is pushed
there once its transaction commits, before the revoking request is answered. These
tests prove the push itself (the marker is in Redis), not just the outcome, so a
cache entry that merely expired cannot make them pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from assay.app import create_app
from assay.audit.service import CLI
from assay.auth import sessions as service
from assay.auth.models import AuthSession
from assay.auth.principal_state import api_key_cache_key, session_cache_key
from assay.cli import app as cli_app
from assay.orgs import members
from assay.settings import Settings
from tests.support.identity import (
    Member,
    RunningApp,
    bearer,
    login,
    new_member,
    platform_admin_token,
    strong_password,
)

from ..conftest import KNOWN_SECRETS


@asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def _marker(app: FastAPI, key: str) -> dict[str, Any] | None:
    raw = await app.state.cache.get(key)
    return None if raw is None else json.loads(raw)


def _sid(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["sid"])


@pytest.fixture
def two_processes(
    settings_factory: Callable[..., Settings], database_url: str, redis_url: str
) -> Callable[[], AsyncIterator[tuple[FastAPI, httpx.AsyncClient, FastAPI, httpx.AsyncClient]]]:
    # The longest state cache allowed: a 401 within it can only come from the push.
    settings = settings_factory(
        database_url=database_url, redis_url=redis_url, auth_state_cache_seconds=5
    )

    @asynccontextmanager
    async def start() -> AsyncIterator[
        tuple[FastAPI, httpx.AsyncClient, FastAPI, httpx.AsyncClient]
    ]:
        first, second = create_app(settings), create_app(settings)
        async with _running(first) as one, _running(second) as two:
            yield first, one, second, two

    return start  # type: ignore[return-value]


async def test_logout_and_key_revocation_on_one_process_apply_on_another(
    two_processes: Callable[..., Any],
) -> None:
    async with two_processes() as (first, one, second, two):
        member = await new_member(first)
        tokens = await login(one, member)
        headers = bearer(tokens["access_token"])
        key = (
            await one.post(
                "/v1/org/api-keys", json={"name": "k", "scopes": ["members:read"]}, headers=headers
            )
        ).json()
        KNOWN_SECRETS.add(key["key"])
        assert (await two.get("/v1/me", headers=headers)).status_code == 200
        assert (
            await two.get("/v1/org/members", headers={"x-api-key": key["key"]})
        ).status_code == 200

        await one.delete(f"/v1/org/api-keys/{key['id']}", headers=headers)
        assert await _marker(second, api_key_cache_key(key["key_id"])) == {"revoked": True}
        assert (
            await two.get("/v1/org/members", headers={"x-api-key": key["key"]})
        ).status_code == 401

        assert (await one.post("/v1/auth/logout", headers=headers)).status_code == 204
        assert await _marker(second, session_cache_key(_sid(tokens["access_token"]))) == {
            "revoked": True
        }
        assert (await two.get("/v1/me", headers=headers)).status_code == 401


async def test_suspension_role_change_and_password_change_reach_every_process(
    two_processes: Callable[..., Any],
) -> None:
    async with two_processes() as (first, one, second, two):
        owner = await new_member(first)
        analyst = await new_member(first, role="analyst", org_slug=owner.org_slug)
        owner_token = (await login(one, owner))["access_token"]
        analyst_token = (await login(two, analyst))["access_token"]
        # Both cached on the second process.
        assert (
            "models:write"
            not in (await two.get("/v1/me", headers=bearer(analyst_token))).json()["permissions"]
        )

        # A role change on the first: the second reloads at once.
        promoted = await one.patch(
            f"/v1/org/members/{analyst.user_id}",
            json={"role": "maintainer"},
            headers=bearer(owner_token),
        )
        assert promoted.status_code == 200
        assert await _marker(second, session_cache_key(_sid(analyst_token))) == {"stale": True}
        me = await two.get("/v1/me", headers=bearer(analyst_token))
        assert "models:write" in me.json()["permissions"]

        # A password change on the first ends the user's other sessions everywhere.
        other = (await login(two, owner))["access_token"]
        assert (await two.get("/v1/me", headers=bearer(other))).status_code == 200
        new_password = strong_password()
        changed = await one.post(
            "/v1/me/password",
            json={"current_password": owner.password, "new_password": new_password},
            headers=bearer(owner_token),
        )
        assert changed.status_code == 204, changed.text
        assert await _marker(second, session_cache_key(_sid(other))) == {"revoked": True}
        assert (await two.get("/v1/me", headers=bearer(other))).status_code == 401
        assert (await two.get("/v1/me", headers=bearer(owner_token))).status_code == 200

        # Suspending the organisation on the first refuses its principals on the second.
        admin = await platform_admin_token(one, _maker(first))
        assert (
            await one.post(f"/v1/admin/orgs/{owner.org_id}/suspend", headers=bearer(admin))
        ).status_code == 200
        for token in (owner_token, analyst_token):
            assert await _marker(second, session_cache_key(_sid(token))) == {"revoked": True}
            assert (await two.get("/v1/me", headers=bearer(token))).status_code == 401


def _maker(app: FastAPI) -> Callable[..., Any]:
    async def make(**options: Any) -> Member:
        return await new_member(app, **options)

    return make


def _cli_env(settings: Settings) -> dict[str, str]:
    env = {
        "ASSAY_ENV": "test",
        "ASSAY_DATA_DIR": str(settings.data_dir),
        "ASSAY_DATABASE_URL": settings.effective_database_url,
        "ASSAY_ARGON2_MEMORY_KIB": str(settings.argon2_memory_kib),
        "ASSAY_ARGON2_TIME_COST": str(settings.argon2_time_cost),
    }
    for name in ("token_signing_key", "session_secret", "encryption_key"):
        secret = getattr(settings, name)
        env[f"ASSAY_{name.upper()}"] = secret.get_secret_value()
    if settings.redis_url:
        env["ASSAY_REDIS_URL"] = settings.redis_url
    return env


async def _cli(settings: Settings, *args: str, stdin: str | None = None) -> str:
    # The CLI runs its own event loop (asyncio.run), as it does at a terminal.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(_cli_env(settings))
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, list(args), input=stdin, env=env)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


@pytest.mark.parametrize("command", ["disable", "reset-password"])
async def test_cli_disable_and_reset_stop_an_existing_token(
    running_app: RunningApp, backend: str, command: str
) -> None:
    # Without Redis the CLI cannot reach the server's cache: only the database tells,
    # so the server checks it on every request here. With Redis, the default cache and
    # the CLI's pushed marker.
    overrides = {"auth_state_cache_seconds": 0} if backend == "memory" else {}
    async with running_app(**overrides) as (app, client):
        member = await new_member(app)
        token = (await login(client, member))["access_token"]
        key = (
            await client.post(
                "/v1/org/api-keys",
                json={"name": "k", "scopes": ["members:read"]},
                headers=bearer(token),
            )
        ).json()
        KNOWN_SECRETS.add(key["key"])
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
        assert (
            await client.get("/v1/org/members", headers={"x-api-key": key["key"]})
        ).status_code == 200
        if command == "disable":
            await _cli(app.state.settings, "admin", "disable", "--email", member.email)
        else:
            output = await _cli(
                app.state.settings,
                "admin",
                "reset-password",
                "--email",
                member.email,
                "--generate-password",
            )
            KNOWN_SECRETS.add(output.rsplit(": ", 1)[-1].strip())
        if backend == "redis":
            assert await _marker(app, session_cache_key(_sid(token))) == {"revoked": True}
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 401
        # A disabled user's keys die with the account; a reset leaves them alone.
        key_status = (
            await client.get("/v1/org/members", headers={"x-api-key": key["key"]})
        ).status_code
        assert key_status == (401 if command == "disable" else 200)


async def test_a_load_racing_a_revocation_never_overwrites_its_marker(
    running_app: RunningApp,
) -> None:
    """A cache miss that read the database just before a logout committed must not put
    the session back: the next request is refused."""
    async with running_app() as (app, client):
        member = await new_member(app)
        tokens = await login(client, member)
        headers = bearer(tokens["access_token"])
        authenticator = app.state.identity.authenticator
        original = authenticator._load_session_state
        raced = False

        async def load_then_logout(session_id: uuid.UUID) -> Any:
            nonlocal raced
            state = await original(session_id)  # read while the session is still valid
            if not raced:
                raced = True
                # Meanwhile, the logout commits (and pushes its marker).
                out = await client.post("/v1/auth/logout", headers=headers)
                assert out.status_code == 204
            return state  # now stale

        await app.state.cache.delete(session_cache_key(_sid(tokens["access_token"])))
        authenticator._load_session_state = load_then_logout
        try:
            # The racing request itself ran concurrently with the logout: it may pass.
            assert (await client.get("/v1/me", headers=headers)).status_code == 200
        finally:
            authenticator._load_session_state = original
        assert raced
        assert await _marker(app, session_cache_key(_sid(tokens["access_token"]))) == {
            "revoked": True
        }
        assert (await client.get("/v1/me", headers=headers)).status_code == 401


async def test_a_rolled_back_revocation_revokes_nothing(running_app: RunningApp) -> None:
    async with running_app() as (app, client):
        member = await new_member(app)
        token = (await login(client, member))["access_token"]
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
        async with app.state.database.sessionmaker() as db:
            sessions = list(
                (
                    await db.execute(
                        select(AuthSession).where(AuthSession.user_id == member.user_id)
                    )
                ).scalars()
            )
            await service.end_sessions(db, app.state.identity, sessions, "test")
            await db.rollback()
        cached = await _marker(app, session_cache_key(_sid(token)))
        assert cached is None or "revoked" not in cached
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
        # And the same change, committed, is pushed before commit() returns.
        async with app.state.database.sessionmaker() as db:
            sessions = list(
                (
                    await db.execute(
                        select(AuthSession).where(AuthSession.user_id == member.user_id)
                    )
                ).scalars()
            )
            await service.end_sessions(db, app.state.identity, sessions, "test")
            await db.commit()
        assert await _marker(app, session_cache_key(_sid(token))) == {"revoked": True}
        assert (await client.get("/v1/me", headers=bearer(token))).status_code == 401


async def test_an_operator_removing_a_member_refuses_their_token_at_once(
    running_app: RunningApp,
) -> None:
    """Removal by the platform (as the CLI acts) ends the member's sessions at once."""
    async with running_app() as (app, client):
        owner = await new_member(app)
        viewer = await new_member(app, role="viewer", org_slug=owner.org_slug)
        viewer_token = (await login(client, viewer))["access_token"]
        assert (await client.get("/v1/me", headers=bearer(viewer_token))).status_code == 200
        async with app.state.database.sessionmaker() as db:
            from assay.core.principal import platform_in

            assert owner.org_id is not None
            await members.remove_member(
                db, app.state.identity, CLI, platform_in(owner.org_id), viewer.user_id
            )
            await db.commit()
        assert (await client.get("/v1/me", headers=bearer(viewer_token))).status_code == 401
