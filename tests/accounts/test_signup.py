"""Self sign-up and email verification: off by default; unverified users cannot sign in."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import func, select

from assay.accounts.models import User
from assay.orgs.models import Organisation
from assay.settings import Settings
from tests.support.identity import (
    Mailbox,
    Member,
    SmtpServer,
    bearer,
    body_of,
    known_secret,
    link_of,
    login,
    smtp_settings,
    strong_password,
)

SIGNUP = "/v1/auth/signup"
VERIFY = "/v1/auth/email/verify"


@pytest.fixture
def signup_enabled() -> bool:
    return True


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings],
    database_url: str,
    smtp_server: SmtpServer,
    signup_enabled: bool,
) -> Settings:
    return settings_factory(
        database_url=database_url, signup_enabled=signup_enabled, **smtp_settings(smtp_server)
    )


def _signup_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "email": f"founder-{uuid.uuid4().hex[:8]}@example.org",
        "password": strong_password(),
        "display_name": "Ada Founder",
        "organisation_name": "Lighthouse Analytics",
    }
    body.update(overrides)
    return body


def _as_member(body: dict[str, Any]) -> Member:
    return Member(body["email"], body["password"], uuid.uuid4(), None, None)


async def _count(app: FastAPI, model: type[Any]) -> int:
    async with app.state.database.sessionmaker() as db:
        return int((await db.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.mark.parametrize("signup_enabled", [False])
async def test_signup_is_off_by_default(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    assert Settings.model_fields["signup_enabled"].default is False
    response = await client.post(SIGNUP, json=_signup_body())
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:assay:problem:not-found"
    # Even a malformed body: a disabled route reveals nothing about its schema.
    assert (await client.post(SIGNUP, json={"nonsense": 1})).status_code == 404
    assert await mailbox.count() == 0


async def test_signup_creates_an_unverified_owner_who_must_verify_first(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    body = _signup_body()
    response = await client.post(SIGNUP, json=body)
    assert response.status_code == 202, response.text

    refused = await client.post(
        "/v1/auth/login", json={"email": body["email"], "password": body["password"]}
    )
    assert refused.status_code == 403
    problem = refused.json()
    assert problem["title"] == "Email address not verified"
    assert "verification" in problem["detail"]

    message = await mailbox.last_to(body["email"])
    assert message["Subject"] == "Confirm your email address for Assay"
    page, token = link_of(message)
    assert page.endswith("/verify-email")
    assert (await client.post(VERIFY, json={"token": token})).status_code == 204

    tokens = await login(client, _as_member(body))
    assert tokens["scope"] == "full"
    me = (await client.get("/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["display_name"] == "Ada Founder"
    assert "org:manage" in me["permissions"]  # owner of the new organisation
    org = (await client.get("/v1/org", headers=bearer(tokens["access_token"]))).json()
    assert org["name"] == body["organisation_name"]


async def test_a_verification_link_works_once_and_expires(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    first = _signup_body()
    await client.post(SIGNUP, json=first)
    _, token = link_of(await mailbox.last_to(first["email"]))
    assert (await client.post(VERIFY, json={"token": token})).status_code == 204
    reused = await client.post(VERIFY, json={"token": token})
    assert reused.status_code == 400
    assert reused.json()["title"] == "Invalid or expired link"

    second = _signup_body()
    await client.post(SIGNUP, json=second)
    _, late = link_of(await mailbox.last_to(second["email"]))
    with time_machine.travel(timedelta(hours=25)):
        assert (await client.post(VERIFY, json={"token": late})).status_code == 400
        refused = await client.post(
            "/v1/auth/login", json={"email": second["email"], "password": second["password"]}
        )
    assert refused.status_code == 403


async def test_a_sign_in_attempt_resends_the_link_at_most_every_five_minutes(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    body = _signup_body()
    credentials = {"email": body["email"], "password": body["password"]}
    await client.post(SIGNUP, json=body)
    _, original = link_of(await mailbox.last_to(body["email"]))
    assert (await client.post("/v1/auth/login", json=credentials)).status_code == 403
    assert len(await mailbox.messages_to(body["email"])) == 1

    with time_machine.travel(timedelta(minutes=6)):
        assert (await client.post("/v1/auth/login", json=credentials)).status_code == 403
        messages = await mailbox.messages_to(body["email"])
        assert len(messages) == 2
        _, fresh = link_of(messages[-1])
        # The newer link voids the older one.
        assert (await client.post(VERIFY, json={"token": original})).status_code == 400
        assert (await client.post(VERIFY, json={"token": fresh})).status_code == 204
        await login(client, _as_member(body))


async def test_a_wrong_password_never_reveals_that_an_account_is_unverified(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    body = _signup_body()
    await client.post(SIGNUP, json=body)
    wrong = await client.post(
        "/v1/auth/login", json={"email": body["email"], "password": strong_password()}
    )
    assert wrong.status_code == 401
    assert len(await mailbox.messages_to(body["email"])) == 1


async def test_signing_up_with_a_taken_address_answers_the_same_and_tells_the_owner(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Mailbox, owner: Member
) -> None:
    fresh = await client.post(SIGNUP, json=_signup_body())
    users, orgs = await _count(app, User), await _count(app, Organisation)
    taken = await client.post(SIGNUP, json=_signup_body(email=owner.email))
    assert taken.status_code == fresh.status_code == 202
    assert taken.content == fresh.content
    assert (await _count(app, User), await _count(app, Organisation)) == (users, orgs)
    notice = await mailbox.last_to(owner.email)
    assert notice["Subject"] == "Sign-up attempt for your Assay account"
    assert "#token=" not in body_of(notice)
    await login(client, owner)  # the existing account is untouched


async def test_signup_applies_the_password_policy(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    body = _signup_body(
        password=known_secret("lighthouse-analytics-2024"), organisation_name="Lighthouse"
    )
    response = await client.post(SIGNUP, json=body)
    assert response.status_code == 422
    assert {e["code"] for e in response.json()["errors"]} == {"contains_context_word"}
    assert await _count(app, User) == 0
    assert await mailbox.count() == 0


async def test_an_organisation_name_in_use_still_gets_its_own_organisation(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    first = _signup_body(organisation_name="Northwind Labs")
    second = _signup_body(organisation_name="Northwind Labs")
    for body in (first, second):
        assert (await client.post(SIGNUP, json=body)).status_code == 202
        _, token = link_of(await mailbox.last_to(body["email"]))
        assert (await client.post(VERIFY, json={"token": token})).status_code == 204
    slugs = set()
    for body in (first, second):
        tokens = await login(client, _as_member(body))
        org = (await client.get("/v1/org", headers=bearer(tokens["access_token"]))).json()
        slugs.add(org["slug"])
    assert len(slugs) == 2
    assert "northwind-labs" in slugs


async def test_a_reset_link_also_verifies_the_address(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    body = _signup_body()
    await client.post(SIGNUP, json=body)
    await client.post("/v1/auth/password/forgot", json={"email": body["email"]})
    reset_mail = await mailbox.last_to(body["email"])
    assert reset_mail["Subject"] == "Reset your Assay password"
    _, token = link_of(reset_mail)
    new_password = strong_password()
    reset = await client.post(
        "/v1/auth/password/reset", json={"token": token, "new_password": new_password}
    )
    assert reset.status_code == 204
    await login(client, Member(body["email"], new_password, uuid.uuid4(), None, None))
