from __future__ import annotations

import httpx
import pyotp
from fastapi import FastAPI

from tests.support.identity import MakeMember, Member, bearer, events, login, platform_admin_token

_admin_token = platform_admin_token


async def test_platform_admin_creates_lists_suspends_and_deletes_orgs(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    token = await _admin_token(client, make_member)
    created = await client.post(
        "/v1/admin/orgs", json={"name": "Flash Ventures"}, headers=bearer(token)
    )
    assert created.status_code == 201
    org = created.json()
    assert org["slug"] == "flash-ventures"
    duplicate = await client.post(
        "/v1/admin/orgs", json={"name": "Flash Ventures"}, headers=bearer(token)
    )
    assert duplicate.status_code == 409
    listed = await client.get("/v1/admin/orgs", headers=bearer(token))
    assert org["id"] in [o["id"] for o in listed.json()]
    suspended = await client.post(f"/v1/admin/orgs/{org['id']}/suspend", headers=bearer(token))
    assert suspended.json()["status"] == "suspended"
    resumed = await client.post(f"/v1/admin/orgs/{org['id']}/resume", headers=bearer(token))
    assert resumed.json()["status"] == "active"
    deleted = await client.delete(f"/v1/admin/orgs/{org['id']}", headers=bearer(token))
    assert deleted.status_code == 204
    listed = await client.get("/v1/admin/orgs", headers=bearer(token))
    assert org["id"] not in [o["id"] for o in listed.json()]


async def test_suspending_an_org_refuses_its_principals_on_the_next_request(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member
) -> None:
    member_token = (await login(client, owner))["access_token"]
    key = (
        await client.post(
            "/v1/org/api-keys",
            json={"name": "k", "scopes": ["members:read"]},
            headers=bearer(member_token),
        )
    ).json()["key"]
    from ..conftest import KNOWN_SECRETS

    KNOWN_SECRETS.add(key)
    assert (await client.get("/v1/org/members", headers={"x-api-key": key})).status_code == 200
    admin = await _admin_token(client, make_member)
    await client.post(f"/v1/admin/orgs/{owner.org_id}/suspend", headers=bearer(admin))
    assert (await client.get("/v1/me", headers=bearer(member_token))).status_code == 401
    assert (await client.get("/v1/org/members", headers={"x-api-key": key})).status_code == 401
    relogin = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert relogin.status_code == 401


async def test_owner_manages_members_roles_and_the_last_owner_is_protected(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member, app: FastAPI
) -> None:
    analyst = await make_member(role="analyst", org_slug=owner.org_slug)
    token = (await login(client, owner))["access_token"]
    analyst_token = (await login(client, analyst))["access_token"]
    members = (await client.get("/v1/org/members", headers=bearer(token))).json()
    assert {m["role"] for m in members} == {"owner", "analyst"}

    demote_last = await client.patch(
        f"/v1/org/members/{owner.user_id}", json={"role": "viewer"}, headers=bearer(token)
    )
    assert demote_last.status_code == 409
    remove_last = await client.delete(f"/v1/org/members/{owner.user_id}", headers=bearer(token))
    assert remove_last.status_code == 409

    promoted = await client.patch(
        f"/v1/org/members/{analyst.user_id}", json={"role": "maintainer"}, headers=bearer(token)
    )
    assert promoted.status_code == 200
    # The role change reaches the member's existing session at once.
    me = await client.get("/v1/me", headers=bearer(analyst_token))
    assert "models:write" in me.json()["permissions"]

    role = await client.post(
        "/v1/org/roles",
        json={"name": "auditor", "permissions": ["predictions:read", "members:read"]},
        headers=bearer(token),
    )
    assert role.status_code == 201
    unknown = await client.post(
        "/v1/org/roles", json={"name": "bad", "permissions": ["everything"]}, headers=bearer(token)
    )
    assert unknown.status_code == 422
    roles = (await client.get("/v1/org/roles", headers=bearer(token))).json()
    assert {"owner", "admin", "maintainer", "analyst", "viewer", "auditor"} <= {
        r["name"] for r in roles
    }

    removed = await client.delete(f"/v1/org/members/{analyst.user_id}", headers=bearer(token))
    assert removed.status_code == 204
    assert (await client.get("/v1/me", headers=bearer(analyst_token))).status_code == 401

    from sqlalchemy import select

    from assay.audit.models import SecurityEvent

    async with app.state.database.sessionmaker() as db:
        event = (
            await db.execute(
                select(SecurityEvent).where(SecurityEvent.action == "member.role_changed")
            )
        ).scalar_one()
    assert event.details == {"before": "analyst", "after": "maintainer", "sessions_restricted": 0}
    assert event.actor_id == str(owner.user_id)
    assert event.request_id is not None


async def test_admins_cannot_grant_more_than_they_hold(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member
) -> None:
    admin = await make_member(role="admin", org_slug=owner.org_slug)
    viewer = await make_member(role="viewer", org_slug=owner.org_slug)
    token = (await login(client, admin))["access_token"]
    escalate = await client.patch(
        f"/v1/org/members/{viewer.user_id}", json={"role": "owner"}, headers=bearer(token)
    )
    assert escalate.status_code == 422


async def test_admin_ends_a_members_session(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member
) -> None:
    viewer = await make_member(role="viewer", org_slug=owner.org_slug)
    viewer_token = (await login(client, viewer))["access_token"]
    token = (await login(client, owner))["access_token"]
    sessions = (await client.get("/v1/org/sessions", headers=bearer(token))).json()
    target = next(s for s in sessions if s["user_id"] == str(viewer.user_id))
    ended = await client.delete(f"/v1/org/sessions/{target['id']}", headers=bearer(token))
    assert ended.status_code == 204
    assert (await client.get("/v1/me", headers=bearer(viewer_token))).status_code == 401
    _ = pyotp


async def test_an_admin_cannot_demote_remove_or_unlock_an_owner(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member, app: FastAPI
) -> None:
    second_owner = await make_member(role="owner", org_slug=owner.org_slug)
    admin = await make_member(role="admin", org_slug=owner.org_slug)
    analyst = await make_member(role="analyst", org_slug=owner.org_slug)
    token = (await login(client, admin))["access_token"]
    for attempt in (
        client.patch(
            f"/v1/org/members/{second_owner.user_id}",
            json={"role": "viewer"},
            headers=bearer(token),
        ),
        client.delete(f"/v1/org/members/{second_owner.user_id}", headers=bearer(token)),
        client.post(f"/v1/org/members/{second_owner.user_id}/unlock", headers=bearer(token)),
    ):
        response = await attempt
        assert response.status_code == 403, response.text
        assert "'owner'" in response.json()["detail"]
    members = {
        m["user_id"]: m["role"]
        for m in (await client.get("/v1/org/members", headers=bearer(token))).json()
    }
    assert members[str(second_owner.user_id)] == "owner"
    # Within their own authority an admin still manages members.
    demoted = await client.patch(
        f"/v1/org/members/{analyst.user_id}", json={"role": "viewer"}, headers=bearer(token)
    )
    assert demoted.status_code == 200
    removed = await client.delete(f"/v1/org/members/{analyst.user_id}", headers=bearer(token))
    assert removed.status_code == 204
    # An owner may demote another owner (not the last one).
    owner_token = (await login(client, owner))["access_token"]
    by_owner = await client.patch(
        f"/v1/org/members/{second_owner.user_id}",
        json={"role": "admin"},
        headers=bearer(owner_token),
    )
    assert by_owner.status_code == 200


async def test_org_admins_unlock_members_and_it_is_recorded(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member, app: FastAPI
) -> None:
    from prometheus_client import REGISTRY

    from assay.accounts.models import User

    viewer = await make_member(role="viewer", org_slug=owner.org_slug)
    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, viewer.user_id)
        user.hard_locked = True
        user.password_failures = 60
        await db.commit()
    locked_out = await client.post(
        "/v1/auth/login", json={"email": viewer.email, "password": viewer.password}
    )
    assert locked_out.status_code == 401
    before = REGISTRY.get_sample_value("assay_account_unlocks_total", {"by": "org_admin"}) or 0
    token = (await login(client, owner))["access_token"]
    unlocked = await client.post(f"/v1/org/members/{viewer.user_id}/unlock", headers=bearer(token))
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json() == {"user_id": str(viewer.user_id), "was_locked": True}
    assert REGISTRY.get_sample_value("assay_account_unlocks_total", {"by": "org_admin"}) == (
        before + 1
    )
    [event] = await events(app, "account.unlocked", target_id=str(viewer.user_id))
    assert event.actor_id == str(owner.user_id)
    assert event.org_id == owner.org_id
    assert event.details["by"] == "org_admin"
    assert event.details["before"]["hard_locked"] is True
    await login(client, viewer)
    # Not in another organisation, and not without members:manage.
    stranger = await make_member(role="viewer")
    elsewhere = await client.post(
        f"/v1/org/members/{stranger.user_id}/unlock", headers=bearer(token)
    )
    assert elsewhere.status_code == 404
    viewer_token = (await login(client, viewer))["access_token"]
    denied = await client.post(
        f"/v1/org/members/{owner.user_id}/unlock", headers=bearer(viewer_token)
    )
    assert denied.status_code == 403
