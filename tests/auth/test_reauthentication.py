"""Confirming the password on account routes: counted, locked, throttled and recorded.

A stolen session must not be a way to guess the account's password: every wrong
password on /v1/me/* counts towards the same lock as a failed sign-in, the failure is
recorded even though the request fails, and the routes are rate limited per address
and per account.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assay.accounts.models import User
from tests.support.identity import Member, RunningApp, bearer, enrol_totp, events, login, new_member

# (path, the body's password field, other fields of a valid body)
ROUTES: dict[str, tuple[str, dict[str, Any]]] = {
    "/v1/me/mfa/disable": ("password", {}),
    "/v1/me/mfa/backup-codes": ("password", {}),
    "/v1/me/password": ("current_password", {"new_password": "juniper-cobalt-orchid-71"}),
    "/v1/me/email": ("password", {"new_email": "elsewhere@example.org"}),
}


def _body(path: str, password: str) -> dict[str, Any]:
    field, others = ROUTES[path]
    return {field: password, **others}


async def _user(app: FastAPI, member: Member) -> User:
    async with app.state.database.sessionmaker() as db:
        return await db.get_one(User, member.user_id)


@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_wrong_passwords_count_lock_and_are_recorded(
    app: FastAPI, client: httpx.AsyncClient, owner: Member, path: str
) -> None:
    token = (await login(client, owner))["access_token"]
    await enrol_totp(client, token)
    threshold = app.state.settings.lockout_threshold
    answers = []
    for attempt in range(threshold):
        response = await client.post(
            path, json=_body(path, f"not-the-password-{attempt}"), headers=bearer(token)
        )
        assert response.status_code == 422, response.text
        answers.append({k: v for k, v in response.json().items() if k not in ("request_id",)})
        assert response.json()["errors"][0]["field"] == ROUTES[path][0]
        # Counted in the database, like a failed sign-in: the error keeps its writes.
        assert (await _user(app, owner)).password_failures == attempt + 1
    user = await _user(app, owner)
    assert user.password_locked_until is not None
    # Locked: the right password gets exactly the wrong password's answer...
    locked = await client.post(path, json=_body(path, owner.password), headers=bearer(token))
    assert locked.status_code == 422
    assert {k: v for k, v in locked.json().items() if k != "request_id"} == answers[0]
    # ...and so does a sign-in, whatever address it comes from.
    relogin = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert relogin.status_code == 401
    failures = [
        e
        for e in await events(app, ROUTES_ACTION[path], actor_id=str(owner.user_id))
        if e.outcome == "failure"
    ]
    assert [e.details["reason"] for e in failures] == ["password"] * threshold + ["locked"]
    assert await events(app, "account.locked", target_id=str(owner.user_id))


ROUTES_ACTION = {
    "/v1/me/mfa/disable": "reauthentication",
    "/v1/me/mfa/backup-codes": "reauthentication",
    "/v1/me/password": "password.change",
    "/v1/me/email": "email.change",
}


async def test_the_right_password_resets_the_count(
    app: FastAPI, client: httpx.AsyncClient, owner: Member
) -> None:
    token = (await login(client, owner))["access_token"]
    await enrol_totp(client, token)
    for _ in range(2):
        wrong = await client.post(
            "/v1/me/mfa/backup-codes", json={"password": "nope-nope-nope"}, headers=bearer(token)
        )
        assert wrong.status_code == 422
    assert (await _user(app, owner)).password_failures == 2
    right = await client.post(
        "/v1/me/mfa/backup-codes", json={"password": owner.password}, headers=bearer(token)
    )
    assert right.status_code == 200
    assert (await _user(app, owner)).password_failures == 0


@pytest.mark.usefixtures("steady_rate_window")
@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_reauthentication_is_rate_limited_per_account(
    running_app: RunningApp, path: str
) -> None:
    # Generous per address, three a minute per account: rotating addresses does not help.
    async with running_app(
        rate_limit_auth_per_address="1000/minute", rate_limit_auth_per_account="3/minute"
    ) as (app, client):
        member = await new_member(app)
        login_response = await client.post(
            "/v1/auth/login",
            json={"email": member.email, "password": member.password},
            headers={"x-forwarded-for": "192.0.2.1"},
        )
        token = login_response.json()["access_token"]
        statuses = []
        for attempt in range(3):
            response = await client.post(
                path,
                json=_body(path, f"wrong-password-{attempt}"),
                headers={**bearer(token), "x-forwarded-for": f"198.51.100.{attempt + 1}"},
            )
            statuses.append(response.status_code)
        # The sign-in above spent one of the account's three.
        assert statuses == [422, 422, 429]
        refused = await client.post(
            path,
            json=_body(path, member.password),
            headers={**bearer(token), "x-forwarded-for": "203.0.113.7"},
        )
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        # Refused before the password was looked at: nothing more was counted.
        assert (await _user(app, member)).password_failures == 2
