"""Invitations: admins offer a role by mail; the link is single use and expires."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import select

from assay.audit.models import SecurityEvent
from assay.core.permissions import BUILTIN_ROLES
from assay.settings import Settings
from tests.support.identity import (
    Mailbox,
    MakeMember,
    Member,
    SmtpServer,
    bearer,
    body_of,
    events,
    known_secret,
    link_of,
    login,
    platform_admin_token,
    smtp_settings,
    strong_password,
)

INVITATIONS = "/v1/org/invitations"
ACCEPT = "/v1/auth/invitations/accept"


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], database_url: str, smtp_server: SmtpServer
) -> Settings:
    return settings_factory(database_url=database_url, **smtp_settings(smtp_server))


def _address() -> str:
    return f"guest-{uuid.uuid4().hex[:8]}@example.org"


async def _invite(
    client: httpx.AsyncClient, token: str, email: str, role: str = "analyst"
) -> httpx.Response:
    return await client.post(
        INVITATIONS, json={"email": email, "role": role}, headers=bearer(token)
    )


async def _invitation_token(
    client: httpx.AsyncClient, mailbox: Mailbox, token: str, email: str, role: str = "analyst"
) -> str:
    response = await _invite(client, token, email, role)
    assert response.status_code == 201, response.text
    _, link_token = link_of(await mailbox.last_to(email))
    return link_token


async def _accept(
    client: httpx.AsyncClient, token: str, password: str, display_name: str = ""
) -> httpx.Response:
    body: dict[str, Any] = {"token": token, "password": password}
    if display_name:
        body["display_name"] = display_name
    return await client.post(ACCEPT, json=body)


async def _actions(app: FastAPI) -> list[str]:
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(select(SecurityEvent.action).order_by(SecurityEvent.occurred_at))
        return list(rows.scalars())


async def test_an_invitation_creates_an_account_for_a_new_address(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Mailbox, owner: Member, owner_token: str
) -> None:
    email = _address()
    created = await _invite(client, owner_token, email.upper(), "analyst")
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["email"] == email
    assert view["role"] == "analyst"
    assert set(view) == {"id", "email", "role", "created_at", "expires_at"}
    listed = (await client.get(INVITATIONS, headers=bearer(owner_token))).json()
    assert [i["id"] for i in listed] == [view["id"]]

    message = await mailbox.last_to(email)
    assert message["Subject"].startswith("You are invited to Org ")
    assert "choose a password" in body_of(message)
    page, token = link_of(message)
    assert page.endswith("/accept-invitation")

    password = strong_password()
    accepted = await _accept(client, token, password, "Grace Guest")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "org_id": str(owner.org_id),
        "org_slug": owner.org_slug,
        "org_name": accepted.json()["org_name"],
        "role": "analyst",
    }
    tokens = await login(client, Member(email, password, uuid.uuid4(), None, None))
    me = (await client.get("/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["org_id"] == str(owner.org_id)
    assert me["display_name"] == "Grace Guest"
    assert me["permissions"] == sorted(BUILTIN_ROLES["analyst"])
    assert (await client.get(INVITATIONS, headers=bearer(owner_token))).json() == []
    actions = await _actions(app)
    for action in ("invitation.created", "user.created", "member.added", "invitation.accepted"):
        assert action in actions


async def test_an_existing_user_joins_with_their_current_password(
    client: httpx.AsyncClient, mailbox: Mailbox, owner_token: str, make_member: MakeMember
) -> None:
    elsewhere = await make_member(role="owner")
    token = await _invitation_token(client, mailbox, owner_token, elsewhere.email, "viewer")
    assert "current password" in body_of(await mailbox.last_to(elsewhere.email))

    wrong = await _accept(client, token, strong_password())
    assert wrong.status_code == 401
    accepted = await _accept(client, token, elsewhere.password, "Ignored Name")
    assert accepted.status_code == 200, accepted.text
    joined = await login(client, elsewhere, org=accepted.json()["org_slug"])
    me = (await client.get("/v1/me", headers=bearer(joined["access_token"]))).json()
    assert me["permissions"] == sorted(BUILTIN_ROLES["viewer"])
    assert me["display_name"] == ""  # an existing account keeps its own details
    home = await login(client, elsewhere, org=elsewhere.org_slug)
    assert home["org_id"] == str(elsewhere.org_id)


async def test_an_invitation_link_works_once(
    client: httpx.AsyncClient, mailbox: Mailbox, owner_token: str
) -> None:
    token = await _invitation_token(client, mailbox, owner_token, _address())
    password = strong_password()
    assert (await _accept(client, token, password)).status_code == 200
    again = await _accept(client, token, password)
    assert again.status_code == 400
    assert again.json()["title"] == "Invalid or expired link"


async def test_an_expired_invitation_is_refused_and_no_longer_listed(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member, owner_token: str
) -> None:
    token = await _invitation_token(client, mailbox, owner_token, _address())
    with time_machine.travel(timedelta(days=7, minutes=1)):
        assert (await _accept(client, token, strong_password())).status_code == 400
        fresh = (await login(client, owner))["access_token"]
        assert (await client.get(INVITATIONS, headers=bearer(fresh))).json() == []


async def test_a_revoked_invitation_stops_working(
    client: httpx.AsyncClient, mailbox: Mailbox, owner_token: str
) -> None:
    email = _address()
    token = await _invitation_token(client, mailbox, owner_token, email)
    invitation_id = (await client.get(INVITATIONS, headers=bearer(owner_token))).json()[0]["id"]
    revoked = await client.delete(f"{INVITATIONS}/{invitation_id}", headers=bearer(owner_token))
    assert revoked.status_code == 204
    assert (await _accept(client, token, strong_password())).status_code == 400
    again = await client.delete(f"{INVITATIONS}/{invitation_id}", headers=bearer(owner_token))
    assert again.status_code == 404


async def test_inviting_again_voids_the_earlier_link(
    client: httpx.AsyncClient, mailbox: Mailbox, owner_token: str
) -> None:
    email = _address()
    first = await _invitation_token(client, mailbox, owner_token, email, "viewer")
    second = await _invitation_token(client, mailbox, owner_token, email, "analyst")
    listed = (await client.get(INVITATIONS, headers=bearer(owner_token))).json()
    assert [(i["email"], i["role"]) for i in listed] == [(email, "analyst")]
    assert (await _accept(client, first, strong_password())).status_code == 400
    assert (await _accept(client, second, strong_password())).status_code == 200


async def test_an_invitation_cannot_offer_more_than_the_inviter_holds(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member, make_member: MakeMember
) -> None:
    admin = await make_member(role="admin", org_slug=owner.org_slug)
    admin_token = (await login(client, admin))["access_token"]
    escalation = await _invite(client, admin_token, _address(), "owner")
    assert escalation.status_code == 422
    assert escalation.json()["errors"][0]["code"] == "role_exceeds_yours"
    assert (await _invite(client, admin_token, _address(), "admin")).status_code == 201
    unknown = await _invite(client, admin_token, _address(), "no-such-role")
    assert unknown.status_code == 422

    analyst = await make_member(role="analyst", org_slug=owner.org_slug)
    analyst_token = (await login(client, analyst))["access_token"]
    assert (await _invite(client, analyst_token, _address(), "viewer")).status_code == 403
    assert (await client.get(INVITATIONS, headers=bearer(analyst_token))).status_code == 403
    assert (await client.get(INVITATIONS)).status_code == 401
    # Only the one permitted invitation went out.
    assert await mailbox.count() == 1


async def test_a_member_cannot_be_invited_again(
    client: httpx.AsyncClient, mailbox: Mailbox, owner: Member, owner_token: str
) -> None:
    response = await _invite(client, owner_token, owner.email)
    assert response.status_code == 409
    assert await mailbox.count() == 0


async def test_a_new_account_from_an_invitation_must_pass_the_policy(
    app: FastAPI, client: httpx.AsyncClient, mailbox: Mailbox, owner_token: str
) -> None:
    email = _address()
    token = await _invitation_token(client, mailbox, owner_token, email)
    weak = await _accept(client, token, known_secret("Sh0rt!x"))
    assert weak.status_code == 422
    assert "too_short" in {e["code"] for e in weak.json()["errors"]}
    # The refusal rolled back: the link still works with a good password.
    assert (await _accept(client, token, strong_password())).status_code == 200


async def test_invitations_of_another_organisation_are_invisible(
    client: httpx.AsyncClient, mailbox: Mailbox, owner_token: str, make_member: MakeMember
) -> None:
    await _invitation_token(client, mailbox, owner_token, _address())
    invitation_id = (await client.get(INVITATIONS, headers=bearer(owner_token))).json()[0]["id"]
    other = await make_member(role="owner")
    other_token = (await login(client, other))["access_token"]
    assert (await client.get(INVITATIONS, headers=bearer(other_token))).json() == []
    foreign = await client.delete(f"{INVITATIONS}/{invitation_id}", headers=bearer(other_token))
    assert foreign.status_code == 404
    assert len((await client.get(INVITATIONS, headers=bearer(owner_token))).json()) == 1


async def test_a_new_organisation_can_invite_its_first_owner(
    client: httpx.AsyncClient, make_member: MakeMember, app: FastAPI, mailbox: Mailbox
) -> None:
    token = await platform_admin_token(client, make_member)
    created = await client.post(
        "/v1/admin/orgs",
        json={"name": "Owned Ventures", "owner_email": "Founder@Example.org"},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["owner_invitation_id"] is not None
    message = await mailbox.last_to("founder@example.org")
    assert "Owned Ventures" in message["Subject"]
    _, link_token = link_of(message)
    password = strong_password()
    accepted = await client.post(
        "/v1/auth/invitations/accept",
        json={"token": link_token, "password": password, "display_name": "Founder"},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "owner"
    assert accepted.json()["org_id"] == body["id"]
    founder = await client.post(
        "/v1/auth/login", json={"email": "founder@example.org", "password": password}
    )
    assert founder.json()["org_id"] == body["id"]
    me = await client.get("/v1/me", headers=bearer(founder.json()["access_token"]))
    assert "org:manage" in me.json()["permissions"]
    [event] = await events(app, "invitation.created", org_id=uuid.UUID(body["id"]))
    assert event.details == {"email": "founder@example.org", "role": "owner"}
    # Without owner_email: an organisation, no invitation.
    bare = await client.post("/v1/admin/orgs", json={"name": "Bare"}, headers=bearer(token))
    assert bare.json()["owner_invitation_id"] is None
    bad = await client.post(
        "/v1/admin/orgs", json={"name": "Bad", "owner_email": "nope"}, headers=bearer(token)
    )
    assert bad.status_code == 422
