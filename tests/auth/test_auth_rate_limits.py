"""The real authentication routes are throttled, per address and per account.

Each test runs twice: with the in-process limiter and with the limiter in Redis. The
per-account budget is charged whatever address a request comes from (the addresses
rotate through X-Forwarded-For from a trusted proxy), so spreading guesses over many
addresses does not help.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from itertools import count

import httpx
import pytest
from fastapi import FastAPI

from assay.email_links import service as email_tokens
from assay.email_links.service import INVITE, RESET, VERIFY
from tests.support.identity import Member, RunningApp, known_secret, new_member

pytestmark = pytest.mark.usefixtures("steady_rate_window")

PER_ACCOUNT = {
    "rate_limit_auth_per_address": "1000/minute",
    "rate_limit_auth_per_account": "3/minute",
}
_addresses = count(1)


def _from_new_address() -> dict[str, str]:
    n = next(_addresses)
    return {"x-forwarded-for": f"198.51.{n // 250}.{n % 250 + 1}"}


async def _statuses(times: int, send: Callable[[], Awaitable[httpx.Response]]) -> list[int]:
    return [(await send()).status_code for _ in range(times)]


async def test_login_is_limited_per_account_across_addresses(running_app: RunningApp) -> None:
    async with running_app(**PER_ACCOUNT) as (app, client):
        member = await new_member(app)

        async def attempt(password: str) -> httpx.Response:
            return await client.post(
                "/v1/auth/login",
                json={"email": member.email.upper(), "password": password},
                headers=_from_new_address(),
            )

        assert await _statuses(3, lambda: attempt("wrong-" + member.password)) == [401] * 3
        # Even the right password waits: the budget is the account's, not the guess's.
        refused = await attempt(member.password)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        other = await new_member(app)
        ok = await client.post(
            "/v1/auth/login",
            json={"email": other.email, "password": other.password},
            headers=_from_new_address(),
        )
        assert ok.status_code == 200


async def test_login_is_limited_per_address_across_accounts(running_app: RunningApp) -> None:
    async with running_app(
        rate_limit_auth_per_address="3/minute", rate_limit_auth_per_account="1000/minute"
    ) as (app, client):
        members = [await new_member(app) for _ in range(4)]
        address = {"x-forwarded-for": "203.0.113.50"}
        statuses = [
            (
                await client.post(
                    "/v1/auth/login",
                    json={"email": m.email, "password": m.password},
                    headers=address,
                )
            ).status_code
            for m in members
        ]
        assert statuses == [200, 200, 200, 429]
        elsewhere = await client.post(
            "/v1/auth/login",
            json={"email": members[3].email, "password": members[3].password},
            headers={"x-forwarded-for": "203.0.113.51"},
        )
        assert elsewhere.status_code == 200


async def _mfa_member(app: FastAPI, client: httpx.AsyncClient) -> tuple[Member, str]:
    """A member with TOTP enrolled, and a pending challenge (one login spent)."""
    from tests.support.identity import enrol_totp

    member = await new_member(app)
    body = (
        await client.post(
            "/v1/auth/login",
            json={"email": member.email, "password": member.password},
            headers=_from_new_address(),
        )
    ).json()
    known_secret(body["access_token"])
    client.headers["x-forwarded-for"] = "192.0.2.200"
    try:
        await enrol_totp(client, body["access_token"])
    finally:
        del client.headers["x-forwarded-for"]
    challenge = (
        await client.post(
            "/v1/auth/login",
            json={"email": member.email, "password": member.password},
            headers=_from_new_address(),
        )
    ).json()["challenge"]
    return member, known_secret(challenge)


async def test_the_mfa_step_is_limited_per_account(running_app: RunningApp) -> None:
    async with running_app(**PER_ACCOUNT) as (app, client):
        _, challenge = await _mfa_member(app, client)

        async def attempt() -> httpx.Response:
            return await client.post(
                "/v1/auth/mfa",
                json={"challenge": challenge, "code": "000000"},
                headers=_from_new_address(),
            )

        # The second factor has its own budget: the two sign-ins above did not spend it.
        assert await _statuses(4, attempt) == [401, 401, 401, 429]
        # A forged challenge names no account; only the address limit applies to it.
        forged = await client.post(
            "/v1/auth/mfa",
            json={"challenge": "not-a-jwt", "code": "000000"},
            headers=_from_new_address(),
        )
        assert forged.status_code == 401


async def _issue(app: FastAPI, member: Member, purpose: str) -> str:
    async with app.state.database.sessionmaker() as db:
        issued = await email_tokens.issue(
            db,
            purpose=purpose,
            email=member.email if purpose != INVITE else "invitee@example.org",
            user_id=member.user_id if purpose != INVITE else None,
            org_id=member.org_id if purpose == INVITE else None,
            role="viewer" if purpose == INVITE else None,
            ttl=timedelta(minutes=30),
        )
        await db.commit()
    return known_secret(issued.token)


async def test_links_are_limited_per_account_of_their_holder(running_app: RunningApp) -> None:
    async with running_app(**PER_ACCOUNT) as (app, client):
        member = await new_member(app)
        reset = await _issue(app, member, RESET)

        async def reset_attempt() -> httpx.Response:
            # A password the policy refuses: the link stays usable, the attempt counts.
            return await client.post(
                "/v1/auth/password/reset",
                json={"token": reset, "new_password": "short"},
                headers=_from_new_address(),
            )

        assert await _statuses(4, reset_attempt) == [422, 422, 422, 429]

        other = await new_member(app)
        verify = await _issue(app, other, VERIFY)

        async def verify_attempt() -> httpx.Response:
            return await client.post(
                "/v1/auth/email/verify", json={"token": verify}, headers=_from_new_address()
            )

        assert await _statuses(4, verify_attempt) == [204, 400, 400, 429]

        invite = await _issue(app, member, INVITE)

        async def accept_attempt() -> httpx.Response:
            return await client.post(
                "/v1/auth/invitations/accept",
                json={"token": invite, "password": "short"},
                headers=_from_new_address(),
            )

        assert await _statuses(4, accept_attempt) == [422, 422, 422, 429]
        # An unknown token names nobody: refused as invalid, never as over budget.
        unknown = await client.post(
            "/v1/auth/password/reset",
            json={"token": "x" * 43, "new_password": "short"},
            headers=_from_new_address(),
        )
        assert unknown.status_code == 400
