"""Changing the email address: the password first, a link to the new address, the old
one told. Read from a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from assay.accounts.models import User
from assay.settings import Settings
from tests.support.identity import (
    Mailbox,
    MakeMember,
    Member,
    SmtpServer,
    bearer,
    body_of,
    events,
    link_of,
    login,
    smtp_settings,
    strong_password,
)


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], database_url: str, smtp_server: SmtpServer
) -> Settings:
    return settings_factory(database_url=database_url, **smtp_settings(smtp_server))


async def _email_of(app: FastAPI, member: Member) -> str:
    async with app.state.database.sessionmaker() as db:
        return (await db.get_one(User, member.user_id)).email


async def _request(
    client: httpx.AsyncClient, token: str, new_email: str, password: str
) -> httpx.Response:
    return await client.post(
        "/v1/me/email",
        json={"new_email": new_email, "password": password},
        headers=bearer(token),
    )


async def test_the_new_address_confirms_and_the_old_one_is_told(
    client: httpx.AsyncClient, owner: Member, app: FastAPI, mailbox: Mailbox
) -> None:
    token = (await login(client, owner))["access_token"]
    # A reset link mailed to the old address before the change.
    await client.post("/v1/auth/password/forgot", json={"email": owner.email})
    _, old_reset = link_of(await mailbox.last_to(owner.email))

    asked = await _request(client, token, "New.Address@Example.org", owner.password)
    assert asked.status_code == 202, asked.text
    assert "new address" in asked.json()["detail"]
    # Nothing changes until the new address answers.
    assert await _email_of(app, owner) == owner.email
    notice = await mailbox.last_to(owner.email)
    assert "new.address@example.org" in body_of(notice)
    page, link_token = link_of(await mailbox.last_to("new.address@example.org"))
    assert page.endswith("/verify-email")

    confirmed = await client.post("/v1/auth/email/verify", json={"token": link_token})
    assert confirmed.status_code == 204, confirmed.text
    assert await _email_of(app, owner) == "new.address@example.org"
    again = await client.post("/v1/auth/email/verify", json={"token": link_token})
    assert again.status_code == 400
    # The old address no longer signs in; the new one does.
    old = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert old.status_code == 401
    new = await client.post(
        "/v1/auth/login", json={"email": "new.address@example.org", "password": owner.password}
    )
    assert new.status_code == 200
    # Links sent to the old address died with it.
    stale = await client.post(
        "/v1/auth/password/reset",
        json={"token": old_reset, "new_password": strong_password()},
    )
    assert stale.status_code == 400
    assert "now uses new.address@example.org" in body_of(await mailbox.last_to(owner.email))
    [event] = await events(app, "email.changed", outcome="success")
    assert event.details == {"before": owner.email, "after": "new.address@example.org"}
    assert event.actor_id == str(owner.user_id)


async def test_an_address_in_use_gets_the_same_answer_and_a_notice(
    client: httpx.AsyncClient,
    owner: Member,
    make_member: MakeMember,
    mailbox: Mailbox,
    app: FastAPI,
) -> None:
    other = await make_member()
    token = (await login(client, owner))["access_token"]
    free = await _request(client, token, "free@example.org", owner.password)
    taken = await _request(client, token, other.email, owner.password)
    assert taken.status_code == free.status_code == 202
    assert taken.json() == free.json()
    message = await mailbox.last_to(other.email)
    assert "already uses it" in body_of(message)
    assert "#token=" not in body_of(message)
    assert await _email_of(app, owner) == owner.email
    [event] = await events(app, "email.change_requested", outcome="failure")
    assert event.details == {"reason": "address_in_use"}


async def test_a_password_change_voids_a_pending_email_change(
    client: httpx.AsyncClient, owner: Member, mailbox: Mailbox, app: FastAPI
) -> None:
    token = (await login(client, owner))["access_token"]
    await _request(client, token, "intruder@example.org", owner.password)
    _, link_token = link_of(await mailbox.last_to("intruder@example.org"))
    changed = await client.post(
        "/v1/me/password",
        json={"current_password": owner.password, "new_password": strong_password()},
        headers=bearer(token),
    )
    assert changed.status_code == 204
    refused = await client.post("/v1/auth/email/verify", json={"token": link_token})
    assert refused.status_code == 400
    assert await _email_of(app, owner) == owner.email


async def test_an_address_taken_meanwhile_is_not_stolen(
    client: httpx.AsyncClient,
    owner: Member,
    make_member: MakeMember,
    mailbox: Mailbox,
    app: FastAPI,
) -> None:
    token = (await login(client, owner))["access_token"]
    await _request(client, token, "contested@example.org", owner.password)
    _, link_token = link_of(await mailbox.last_to("contested@example.org"))
    await make_member(email="contested@example.org")
    refused = await client.post("/v1/auth/email/verify", json={"token": link_token})
    assert refused.status_code == 400
    assert await _email_of(app, owner) == owner.email


async def test_the_same_address_changes_nothing(
    client: httpx.AsyncClient, owner: Member, mailbox: Mailbox
) -> None:
    token = (await login(client, owner))["access_token"]
    before = await mailbox.count()
    same = await _request(client, token, owner.email.upper(), owner.password)
    assert same.status_code == 202
    assert await mailbox.count() == before
