from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import time_machine
from fastapi import FastAPI
from sqlalchemy import select

from assay.accounts.models import User
from assay.audit.models import SecurityEvent
from tests.support.identity import Member, bearer, enrol_totp, events, login, next_code


async def _fail(client: httpx.AsyncClient, member: Member, address: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/login",
        json={"email": member.email, "password": "wrong-" + member.password},
        headers={"x-forwarded-for": address},
    )


async def _user(app: FastAPI, member: Member) -> User:
    async with app.state.database.sessionmaker() as db:
        return await db.get_one(User, member.user_id)


async def test_five_failures_lock_and_locked_looks_like_wrong_password(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    bodies = []
    for attempt in range(5):
        response = await _fail(client, owner, f"198.51.100.{attempt}")
        assert response.status_code == 401
        bodies.append(response.json()["detail"])
    locked = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert locked.status_code == 401
    assert locked.json()["detail"] == bodies[0]
    user = await _user(app, owner)
    assert user.password_failures == 5
    assert user.password_locked_until is not None
    async with app.state.database.sessionmaker() as db:
        actions = (
            (
                await db.execute(
                    select(SecurityEvent.action).where(SecurityEvent.actor_id == str(owner.user_id))
                )
            )
            .scalars()
            .all()
        )
    assert "account.locked" in actions
    assert actions.count("login") >= 6


async def test_hard_lock_before_a_hundred_failures(
    client: httpx.AsyncClient, owner: Member, app: FastAPI, identity: Any
) -> None:
    limit = identity.settings.lockout_hard_limit
    assert limit < 100
    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, owner.user_id)
        user.password_failures = limit - 1
        await db.commit()
    await _fail(client, owner, "203.0.113.9")
    user = await _user(app, owner)
    assert user.hard_locked


async def test_a_lock_voids_a_pending_mfa_challenge(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    token = (await login(client, owner))["access_token"]
    secret, _ = await enrol_totp(client, token)
    challenge = (await login(client, owner))["challenge"]
    for _ in range(5):
        wrong = await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": "000000"})
        assert wrong.status_code == 401
    fresh_code = next_code(secret)
    after_lock = await client.post(
        "/v1/auth/mfa", json={"challenge": challenge, "code": fresh_code}
    )
    assert after_lock.status_code == 401
    user = await _user(app, owner)
    assert user.otp_failures == 5
    assert user.password_failures == 0


async def test_successful_login_resets_the_count(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    for _ in range(3):
        await _fail(client, owner, "192.0.2.1")
    await login(client, owner)
    assert (await _user(app, owner)).password_failures == 0
    _ = bearer


async def test_lock_durations_double_and_stop_at_the_cap(
    client: httpx.AsyncClient, owner: Member, app: FastAPI, identity: Any
) -> None:
    settings = identity.settings
    assert (settings.lockout_base_seconds, settings.lockout_max_seconds) == (60, 900)
    # The threshold-th failure locks for the base; each further one doubles it.
    expected = [60, 120, 240, 480, 900, 900]
    seen = []
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        for _ in range(settings.lockout_threshold - 1):
            await _fail(client, owner, "192.0.2.10")
        for _ in expected:
            now = datetime.now(UTC)
            await _fail(client, owner, "192.0.2.10")
            user = await _user(app, owner)
            assert user.password_locked_until is not None
            seen.append(round((user.password_locked_until - now).total_seconds()))
            # Locked until then, even with the right password...
            traveller.shift(seen[-1] - 1)
            assert (
                await client.post(
                    "/v1/auth/login", json={"email": owner.email, "password": owner.password}
                )
            ).status_code == 401
            # ...and over just after (the next failure starts the next, longer lock).
            traveller.shift(2)
        assert seen == expected
        failures = (await _user(app, owner)).password_failures
        assert failures == settings.lockout_threshold - 1 + len(expected)
        # After the last lock, the right password signs in and resets the count.
        await login(client, owner)
        assert (await _user(app, owner)).password_failures == 0


async def test_a_password_reset_that_lifts_a_lock_is_recorded_and_counted(
    app: FastAPI, owner: Member, identity: Any
) -> None:
    from prometheus_client import REGISTRY

    from assay.accounts.email_flows import reset_password
    from assay.audit.service import CLI
    from assay.email_links.service import RESET, issue
    from tests.support.identity import strong_password

    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, owner.user_id)
        user.hard_locked = True
        user.password_failures = identity.settings.lockout_hard_limit
        issued = await issue(
            db, purpose=RESET, email=owner.email, user_id=owner.user_id, ttl=timedelta(minutes=5)
        )
        await db.commit()
    before = REGISTRY.get_sample_value("assay_account_unlocks_total", {"by": "password_reset"})
    async with app.state.database.sessionmaker() as db:
        await reset_password(db, identity, CLI, token=issued.token, new_password=strong_password())
        await db.commit()
    assert not (await _user(app, owner)).hard_locked
    [event] = await events(app, "account.unlocked", target_id=str(owner.user_id))
    assert event.details["by"] == "password_reset"
    assert event.details["before"]["hard_locked"] is True
    after = REGISTRY.get_sample_value("assay_account_unlocks_total", {"by": "password_reset"})
    assert after == (before or 0) + 1
