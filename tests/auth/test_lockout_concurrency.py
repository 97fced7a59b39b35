"""Failure counters under concurrency: every failure counts, whoever sends them at once.

An attacker who fires wrong passwords (or codes) in parallel must reach the lock exactly
as one who sends them one by one. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assay.accounts.models import User
from assay.audit.service import CLI
from assay.auth.credentials.lockout import Factor, count_failure
from assay.settings import Settings
from tests.support.identity import Member, bearer, enrol_totp, events, login

ATTEMPTS = 30


@pytest.fixture
def settings(settings_factory: Any, database_url: str) -> Settings:
    # No timed lock before the hard limit, which the last of the attempts reaches: every
    # attempt is counted, so the expected count is exact.
    settings: Settings = settings_factory(
        database_url=database_url, lockout_threshold=50, lockout_hard_limit=ATTEMPTS
    )
    return settings


async def _user(app: FastAPI, member: Member) -> User:
    async with app.state.database.sessionmaker() as db:
        return await db.get_one(User, member.user_id)


def _numbers(failures: list[Any]) -> list[int]:
    return sorted(int(event.details["failures"]) for event in failures)


async def test_concurrent_wrong_passwords_are_all_counted_and_reach_the_hard_lock(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    async def wrong() -> httpx.Response:
        return await client.post(
            "/v1/auth/login", json={"email": owner.email, "password": "wrong-" + owner.password}
        )

    responses = await asyncio.gather(*(wrong() for _ in range(ATTEMPTS)))
    assert {r.status_code for r in responses} == {401}
    user = await _user(app, owner)
    assert user.password_failures == ATTEMPTS
    assert user.hard_locked
    # Each failure saw its own number: none was counted on a stale value.
    failures = [
        e
        for e in await events(app, "login", actor_id=str(owner.user_id), outcome="failure")
        if e.details.get("reason") == "password"
    ]
    assert _numbers(failures) == list(range(1, ATTEMPTS + 1))
    assert len(await events(app, "account.hard_locked", target_id=str(owner.user_id))) == 1
    refused = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert refused.status_code == 401


async def test_concurrent_wrong_codes_are_all_counted(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    token = (await login(client, owner))["access_token"]
    await enrol_totp(client, token)
    challenge = (await login(client, owner))["challenge"]
    assert bearer(challenge)  # registered as a secret for the log check

    async def wrong(code: int) -> httpx.Response:
        return await client.post(
            "/v1/auth/mfa", json={"challenge": challenge, "code": f"{code:06d}"}
        )

    # Codes no TOTP window can hold at once; all wrong with overwhelming probability,
    # and the count below tells if one was not.
    responses = await asyncio.gather(*(wrong(n) for n in range(ATTEMPTS)))
    assert {r.status_code for r in responses} == {401}
    user = await _user(app, owner)
    assert user.otp_failures == ATTEMPTS
    assert user.hard_locked
    failures = await events(app, "mfa.verify", actor_id=str(owner.user_id), outcome="failure")
    assert _numbers([e for e in failures if "failures" in e.details]) == list(
        range(1, ATTEMPTS + 1)
    )


@pytest.mark.parametrize("factor", ["password", "otp"])
async def test_failures_counted_on_stale_rows_add_up(
    owner: Member, app: FastAPI, factor: Factor
) -> None:
    """Every transaction loads the user before any of them counts: the worst interleaving,
    made certain rather than left to scheduling. The last failures before the hard limit,
    so that exactly one of them must lock."""
    settings: Settings = app.state.settings
    column = f"{factor}_failures"
    racing = 8  # within every connection pool used here
    start = ATTEMPTS - racing
    async with app.state.database.sessionmaker() as db:
        setattr(await db.get_one(User, owner.user_id), column, start)
        await db.commit()
    sessions = [app.state.database.sessionmaker() for _ in range(racing)]
    try:
        users = [await db.get_one(User, owner.user_id) for db in sessions]
        assert {getattr(u, column) for u in users} == {start}

        async def fail(db: Any, user: User) -> tuple[str | None, int]:
            locked = await count_failure(db, CLI, user, factor, settings, user.created_at)
            seen = int(getattr(user, column))
            await db.commit()
            return locked, seen

        results = await asyncio.gather(
            *(fail(db, u) for db, u in zip(sessions, users, strict=True))
        )
    finally:
        for db in sessions:
            await db.close()
    assert sorted(seen for _, seen in results) == list(range(start + 1, ATTEMPTS + 1))
    assert [locked for locked, _ in results].count("hard_locked") == 1
    user = await _user(app, owner)
    assert getattr(user, column) == ATTEMPTS
    assert user.hard_locked
