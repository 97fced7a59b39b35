from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from tests.support.identity import MakeMember, Member, bearer, events, login

from ..conftest import KNOWN_SECRETS


async def _create(client: httpx.AsyncClient, token: str, **body: object) -> httpx.Response:
    payload = {"name": "ci", "scopes": ["members:read"], **body}
    response = await client.post("/v1/org/api-keys", json=payload, headers=bearer(token))
    if response.status_code == 201:
        KNOWN_SECRETS.add(response.json()["key"])
    return response


async def test_key_is_shown_once_and_works_in_either_header(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    created = await _create(client, owner_token)
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("assay_sk_")
    listed = await client.get("/v1/org/api-keys", headers=bearer(owner_token))
    assert key not in listed.text
    assert listed.json()[0]["key_id"] == created.json()["key_id"]
    assert (await client.get("/v1/org/members", headers={"x-api-key": key})).status_code == 200
    assert (await client.get("/v1/org/members", headers=bearer(key))).status_code == 200


async def test_key_scopes_limit_what_it_can_do(client: httpx.AsyncClient, owner_token: str) -> None:
    key = (await _create(client, owner_token, scopes=["members:read"])).json()["key"]
    denied = await client.get("/v1/org/api-keys", headers={"x-api-key": key})
    assert denied.status_code == 403
    assert "keys:manage" in denied.json()["detail"]


async def test_scopes_beyond_the_creator_are_refused(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    admin = await make_member(role="admin")
    token = (await login(client, admin))["access_token"]
    response = await _create(client, token, scopes=["org:manage"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "scopes"


async def test_revocation_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    created = (await _create(client, owner_token)).json()
    headers = {"x-api-key": created["key"]}
    assert (await client.get("/v1/org/members", headers=headers)).status_code == 200
    revoked = await client.delete(f"/v1/org/api-keys/{created['id']}", headers=bearer(owner_token))
    assert revoked.status_code == 204
    assert (await client.get("/v1/org/members", headers=headers)).status_code == 401


async def test_expired_and_tampered_keys_are_refused(
    client: httpx.AsyncClient, owner_token: str, app: object
) -> None:
    soon = datetime.now(UTC) + timedelta(days=1)
    created = (await _create(client, owner_token, expires_at=soon.isoformat())).json()
    key = created["key"]
    tampered = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert (await client.get("/v1/org/members", headers={"x-api-key": tampered})).status_code == 401
    from sqlalchemy import update

    from assay.api_keys.models import ApiKey
    from assay.core.tenancy import across_tenants

    async with app.state.database.sessionmaker() as db:  # type: ignore[attr-defined]
        await db.execute(
            across_tenants(
                update(ApiKey)
                .where(ApiKey.key_id == created["key_id"])
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)),
                "test: expire a key",
            )
        )
        await db.commit()
    await app.state.cache.delete(f"assay:auth:apikey:{created['key_id']}")  # type: ignore[attr-defined]
    assert (await client.get("/v1/org/members", headers={"x-api-key": key})).status_code == 401
    past = await _create(client, owner_token, expires_at="2001-01-01T00:00:00Z")
    assert past.status_code == 422


async def test_cidr_allow_list_is_enforced(client: httpx.AsyncClient, owner_token: str) -> None:
    allowed = (await _create(client, owner_token, allowed_cidrs=["127.0.0.0/8"])).json()["key"]
    refused = (await _create(client, owner_token, allowed_cidrs=["10.0.0.0/8"])).json()["key"]
    assert (await client.get("/v1/org/members", headers={"x-api-key": allowed})).status_code == 200
    assert (await client.get("/v1/org/members", headers={"x-api-key": refused})).status_code == 401
    bad = await _create(client, owner_token, allowed_cidrs=["not-a-network"])
    assert bad.status_code == 422


async def test_keys_are_never_accepted_in_the_url(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    key = (await _create(client, owner_token)).json()["key"]
    for name in ("api_key", "key", "access_token", "token"):
        response = await client.get("/v1/org/members", params={name: key})
        assert response.status_code == 401


async def test_stored_key_is_a_keyed_hash(
    client: httpx.AsyncClient, owner_token: str, app: object
) -> None:
    created = (await _create(client, owner_token)).json()
    secret = created["key"].split("_", 3)[3]
    from sqlalchemy import select

    from assay.api_keys.models import ApiKey
    from assay.core.tenancy import across_tenants

    async with app.state.database.sessionmaker() as db:  # type: ignore[attr-defined]
        stored = (
            (await db.execute(across_tenants(select(ApiKey.secret_hash), "test: read hashes")))
            .scalars()
            .all()
        )
    assert all(secret not in value for value in stored)
    assert all(len(value) == 64 for value in stored)


async def test_an_api_key_cannot_create_api_keys(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    key = (await _create(client, owner_token, scopes=["keys:manage", "members:read"])).json()["key"]
    # It may list keys (its scope allows it)...
    assert (await client.get("/v1/org/api-keys", headers={"x-api-key": key})).status_code == 200
    # ...but never mint one, which would outlive every check on its creator.
    minted = await client.post(
        "/v1/org/api-keys",
        json={"name": "child", "scopes": ["members:read"]},
        headers={"x-api-key": key},
    )
    assert minted.status_code == 403
    assert "API key" in minted.json()["detail"]


async def test_removing_or_demoting_the_creator_revokes_their_keys(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member, app: FastAPI
) -> None:
    owner_token = (await login(client, owner))["access_token"]
    admin = await make_member(role="admin", org_slug=owner.org_slug)
    admin_token = (await login(client, admin))["access_token"]
    broad = (await _create(client, admin_token, scopes=["keys:manage", "members:read"])).json()
    narrow = (await _create(client, admin_token, scopes=["members:read"])).json()
    own = (await _create(client, owner_token, scopes=["keys:manage"])).json()
    for key in (broad, narrow, own):
        assert (
            await client.get("/v1/org/members", headers={"x-api-key": key["key"]})
        ).status_code in (200, 403)

    # Demoted to analyst: keys:manage is gone from their role, so is the key holding it.
    demoted = await client.patch(
        f"/v1/org/members/{admin.user_id}", json={"role": "analyst"}, headers=bearer(owner_token)
    )
    assert demoted.status_code == 200
    assert (
        await client.get("/v1/org/members", headers={"x-api-key": broad["key"]})
    ).status_code == 401
    assert (
        await client.get("/v1/org/members", headers={"x-api-key": narrow["key"]})
    ).status_code == 200
    [event] = await events(app, "api_key.revoked", target_id=broad["id"])
    assert event.details == {"reason": "creator_role_changed"}
    assert event.actor_id == str(owner.user_id)

    # Removed: every key they created goes, nobody else's.
    removed = await client.delete(f"/v1/org/members/{admin.user_id}", headers=bearer(owner_token))
    assert removed.status_code == 204
    assert (
        await client.get("/v1/org/members", headers={"x-api-key": narrow["key"]})
    ).status_code == 401
    [event] = await events(app, "api_key.revoked", target_id=narrow["id"])
    assert event.details == {"reason": "creator_removed"}
    listed = {
        k["id"]: k
        for k in (await client.get("/v1/org/api-keys", headers=bearer(owner_token))).json()
    }
    assert listed[narrow["id"]]["revoked_at"] is not None
    assert listed[own["id"]]["revoked_at"] is None


@pytest.mark.parametrize(
    "value", ["2030-01-01T00:00:00", "2030-01-01 12:00", "tomorrow", "2030-13-01T00:00:00Z"]
)
async def test_an_expiry_without_a_time_zone_is_a_clear_422(
    client: httpx.AsyncClient, owner_token: str, value: str
) -> None:
    response = await _create(client, owner_token, expires_at=value)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "body.expires_at"
    with_zone = await _create(client, owner_token, expires_at="2030-01-01T00:00:00+02:00")
    assert with_zone.status_code == 201
    assert with_zone.json()["expires_at"].startswith("2029-12-31T22:00:00")
