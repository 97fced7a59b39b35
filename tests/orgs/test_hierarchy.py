"""The one hierarchy rule: nobody grants, or acts on, more than they hold.

Every path that hands out permissions (custom roles, API keys, invitations, role
changes) refuses permissions the caller lacks; every action on another member (role
change, removal, unlock, ending a session, revoking a key they made) needs every
permission of that member's role. Tested as a table: an admin against an owner's
powers, and the same admin within its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.identity import MakeMember, Member, bearer, login


@dataclass(frozen=True)
class Org:
    owner: Member
    owner_token: str
    admin: Member
    admin_token: str
    analyst: Member


@pytest.fixture
async def org(client: httpx.AsyncClient, make_member: MakeMember) -> Org:
    owner = await make_member(role="owner")
    admin = await make_member(role="admin", org_slug=owner.org_slug)
    analyst = await make_member(role="analyst", org_slug=owner.org_slug)
    return Org(
        owner=owner,
        owner_token=(await login(client, owner))["access_token"],
        admin=admin,
        admin_token=(await login(client, admin))["access_token"],
        analyst=analyst,
    )


Grant = Callable[[httpx.AsyncClient, Org, str], Awaitable[httpx.Response]]


async def _custom_role(client: httpx.AsyncClient, org: Org, permission: str) -> httpx.Response:
    return await client.post(
        "/v1/org/roles",
        json={"name": f"r-{permission.replace(':', '-')}", "permissions": [permission]},
        headers=bearer(org.admin_token),
    )


async def _api_key(client: httpx.AsyncClient, org: Org, permission: str) -> httpx.Response:
    return await client.post(
        "/v1/org/api-keys",
        json={"name": "k", "scopes": [permission]},
        headers=bearer(org.admin_token),
    )


async def _role_holding(client: httpx.AsyncClient, org: Org, permission: str) -> str:
    """A custom role holding exactly `permission`, made by the owner."""
    name = f"only-{permission.replace(':', '-')}"
    made = await client.post(
        "/v1/org/roles",
        json={"name": name, "permissions": [permission]},
        headers=bearer(org.owner_token),
    )
    assert made.status_code == 201, made.text
    return name


async def _invitation(client: httpx.AsyncClient, org: Org, permission: str) -> httpx.Response:
    role = await _role_holding(client, org, permission)
    return await client.post(
        "/v1/org/invitations",
        json={"email": "newcomer@example.org", "role": role},
        headers=bearer(org.admin_token),
    )


async def _role_change(client: httpx.AsyncClient, org: Org, permission: str) -> httpx.Response:
    role = await _role_holding(client, org, permission)
    return await client.patch(
        f"/v1/org/members/{org.analyst.user_id}",
        json={"role": role},
        headers=bearer(org.admin_token),
    )


GRANTS: dict[str, Grant] = {
    "custom role": _custom_role,
    "api key": _api_key,
    "invitation": _invitation,
    "role change": _role_change,
}


@pytest.mark.parametrize("path", sorted(GRANTS))
async def test_no_path_grants_a_permission_the_granter_lacks(
    client: httpx.AsyncClient, org: Org, path: str
) -> None:
    # org:manage is the owner's alone: an admin may not hand it out by any path.
    refused = await GRANTS[path](client, org, "org:manage")
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    # ...but may hand out what it holds, by the same path.
    granted = await GRANTS[path](client, org, "models:read")
    assert granted.status_code in (200, 201), granted.text


async def test_a_refused_custom_role_is_not_created(client: httpx.AsyncClient, org: Org) -> None:
    await _custom_role(client, org, "org:manage")
    roles = (await client.get("/v1/org/roles", headers=bearer(org.owner_token))).json()
    assert "r-org-manage" not in {r["name"] for r in roles}


Act = Callable[[httpx.AsyncClient, str, Member, dict[str, Any]], Awaitable[httpx.Response]]


async def _end_session(
    client: httpx.AsyncClient, token: str, target: Member, sessions: dict[str, Any]
) -> httpx.Response:
    return await client.delete(f"/v1/org/sessions/{sessions['id']}", headers=bearer(token))


async def _revoke_their_key(
    client: httpx.AsyncClient, token: str, target: Member, sessions: dict[str, Any]
) -> httpx.Response:
    return await client.delete(f"/v1/org/api-keys/{sessions['key']}", headers=bearer(token))


async def _remove(
    client: httpx.AsyncClient, token: str, target: Member, sessions: dict[str, Any]
) -> httpx.Response:
    return await client.delete(f"/v1/org/members/{target.user_id}", headers=bearer(token))


async def _demote(
    client: httpx.AsyncClient, token: str, target: Member, sessions: dict[str, Any]
) -> httpx.Response:
    return await client.patch(
        f"/v1/org/members/{target.user_id}", json={"role": "viewer"}, headers=bearer(token)
    )


async def _unlock(
    client: httpx.AsyncClient, token: str, target: Member, sessions: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"/v1/org/members/{target.user_id}/unlock", headers=bearer(token))


ACTIONS: dict[str, Act] = {
    "end a session": _end_session,
    "revoke a key they made": _revoke_their_key,
    "remove": _remove,
    "change the role": _demote,
    "unlock": _unlock,
}


async def _target_state(client: httpx.AsyncClient, target: Member) -> dict[str, Any]:
    """A session and an API key of `target`, for the actions to aim at."""
    token = (await login(client, target))["access_token"]
    mine = await client.get("/v1/me/sessions", headers=bearer(token))
    key = await client.post(
        "/v1/org/api-keys",
        json={"name": "theirs", "scopes": ["models:read"]},
        headers=bearer(token),
    )
    assert key.status_code == 201, key.text
    return {"id": mine.json()[0]["id"], "key": key.json()["id"]}


@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_an_admin_cannot_act_on_an_owner(
    client: httpx.AsyncClient, org: Org, make_member: MakeMember, action: str
) -> None:
    # A second owner, so "the last owner" rules never answer first.
    target = await make_member(role="owner", org_slug=org.owner.org_slug)
    state = await _target_state(client, target)
    refused = await ACTIONS[action](client, org.admin_token, target, state)
    assert refused.status_code == 403, refused.text
    assert "permissions you do not have" in refused.json()["detail"]
    # The owner still signs in, with the session and key intact.
    assert (
        await client.get("/v1/me", headers=bearer((await login(client, target))["access_token"]))
    ).status_code == 200


@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_an_admin_can_act_on_a_member_below_it(
    client: httpx.AsyncClient, org: Org, make_member: MakeMember, action: str
) -> None:
    target = await make_member(role="admin", org_slug=org.owner.org_slug)
    state = await _target_state(client, target)
    allowed = await ACTIONS[action](client, org.admin_token, target, state)
    assert allowed.status_code in (200, 204), allowed.text
