from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from assay.accounts.models import User
from assay.auth.deps import IdentityContext
from assay.core.crypto import derive_key
from assay.core.permissions import BUILTIN_ROLES
from assay.settings import Settings
from tests.support.identity import MakeMember, Member, bearer, events, login


async def test_login_returns_tokens_that_reach_me(client: httpx.AsyncClient, owner: Member) -> None:
    body = await login(client, owner)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] <= 900
    assert body["scope"] == "full"
    me = await client.get("/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == owner.email
    assert me.json()["org_id"] == str(owner.org_id)
    assert "members:manage" in me.json()["permissions"]


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    client: httpx.AsyncClient, owner: Member
) -> None:
    unknown = await client.post(
        "/v1/auth/login", json={"email": "nobody@example.org", "password": owner.password}
    )
    wrong = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password + "x"}
    )
    assert unknown.status_code == wrong.status_code == 401
    strip = ("instance", "request_id")
    assert {k: v for k, v in unknown.json().items() if k not in strip} == {
        k: v for k, v in wrong.json().items() if k not in strip
    }


async def test_long_password_differing_in_last_character_fails(
    client: httpx.AsyncClient, make_member: MakeMember, identity: IdentityContext, app: object
) -> None:
    member = await make_member()
    long_password = "orchid-lantern-" * 4 + "saffron-glacier"  # 75 characters
    from assay.accounts.models import User
    from assay.auth.credentials.users import set_password

    async with app.state.database.sessionmaker() as db:  # type: ignore[attr-defined]
        user = await db.get_one(User, member.user_id)
        await set_password(db, identity, user, long_password)
        await db.commit()
    ok = await client.post(
        "/v1/auth/login", json={"email": member.email, "password": long_password}
    )
    assert ok.status_code == 200
    near = await client.post(
        "/v1/auth/login", json={"email": member.email, "password": long_password[:-1] + "X"}
    )
    assert near.status_code == 401


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, owner: Member
) -> None:
    first = await login(client, owner)
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/v1/me", headers=bearer(second["access_token"]))).status_code == 200

    replay = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    # The whole family is gone: the newest tokens stop working too.
    assert (await client.get("/v1/me", headers=bearer(second["access_token"]))).status_code == 401
    again = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 401


async def test_logout_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, owner: Member
) -> None:
    tokens = await login(client, owner)
    headers = bearer(tokens["access_token"])
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    assert (await client.post("/v1/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/v1/me", headers=headers)).status_code == 401
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401


def _forge(
    identity: IdentityContext,
    claims: dict[str, object],
    key: bytes | None = None,
    algorithm: str = "HS256",
) -> str:
    signing_key = key or derive_key(
        identity.settings.token_signing_key.get_secret_value(),  # type: ignore[union-attr]
        "assay jwt v1",
    )
    return jwt.encode(claims, signing_key, algorithm=algorithm)


async def test_forged_expired_and_misused_tokens_are_refused(
    client: httpx.AsyncClient, owner: Member, identity: IdentityContext
) -> None:
    tokens = await login(client, owner)
    good = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    now = int(time.time())
    expired = _forge(identity, {**good, "exp": now - 10, "iat": now - 100, "nbf": now - 100})
    wrong_key = _forge(identity, good, key=b"k" * 32)
    wrong_audience = _forge(identity, {**good, "aud": "someone-else"})
    challenge_type = _forge(identity, {**good, "typ": "mfa_challenge"})
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(__import__("json").dumps(good).encode()).decode()
    alg_none = f"{header}.{payload}."
    for token in (
        expired,
        wrong_key,
        wrong_audience,
        challenge_type,
        alg_none,
        tokens["refresh_token"],
        "garbage",
    ):
        response = await client.get("/v1/me", headers=bearer(token))
        assert response.status_code == 401, token
        assert response.headers["content-type"] == "application/problem+json"


async def test_jku_and_jwk_headers_are_ignored(
    client: httpx.AsyncClient, owner: Member, identity: IdentityContext
) -> None:
    tokens = await login(client, owner)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    # The attacker signs with their own key and embeds exactly that key in the header.
    attacker_key = b"attacker-chosen-key-of-32-bytes!"
    embedded = {"kty": "oct", "k": jwt.utils.base64url_encode(attacker_key).decode()}
    token = jwt.encode(
        claims,
        attacker_key,
        algorithm="HS256",
        headers={"jku": "https://attacker.example/keys", "jwk": embedded},
    )
    # A verifier that trusted the header's key would accept this token...
    header_key = jwt.PyJWK(jwt.get_unverified_header(token)["jwk"], algorithm="HS256").key
    trusted = jwt.decode(
        token, header_key, algorithms=["HS256"], audience=claims["aud"], issuer=claims["iss"]
    )
    assert trusted["sub"] == claims["sub"]
    # ...Assay's does not.
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 401


async def test_sessions_are_listed_and_can_be_ended(
    client: httpx.AsyncClient, owner: Member
) -> None:
    first = await login(client, owner)
    second = await login(client, owner)
    listed = await client.get("/v1/me/sessions", headers=bearer(first["access_token"]))
    assert listed.status_code == 200
    sessions = listed.json()
    assert len(sessions) == 2
    other = next(s for s in sessions if not s["current"])
    ended = await client.delete(
        f"/v1/me/sessions/{other['id']}", headers=bearer(first["access_token"])
    )
    assert ended.status_code == 204
    assert (await client.get("/v1/me", headers=bearer(second["access_token"]))).status_code == 401
    assert (await client.get("/v1/me", headers=bearer(first["access_token"]))).status_code == 200
    missing = await client.delete(
        f"/v1/me/sessions/{uuid.uuid4()}", headers=bearer(first["access_token"])
    )
    assert missing.status_code == 404


async def test_switching_organisation_issues_a_new_token(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    member = await make_member(role="owner")
    other = await make_member(role="owner")
    from assay.accounts.models import User
    from assay.audit.service import CLI
    from assay.core.principal import PLATFORM
    from assay.orgs import service as orgs

    app = client._transport.app  # type: ignore[attr-defined]
    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, member.user_id)
        await orgs.add_member(db, CLI, PLATFORM, other.org_id, user, "viewer")  # type: ignore[arg-type]
        await db.commit()
    tokens = await login(client, member)
    assert tokens["org_id"] == str(member.org_id)
    switched = await client.post(
        "/v1/auth/switch-org", json={"org": other.org_slug}, headers=bearer(tokens["access_token"])
    )
    assert switched.status_code == 200
    new = switched.json()
    assert new["org_id"] == str(other.org_id)
    me = await client.get("/v1/me", headers=bearer(new["access_token"]))
    assert me.json()["permissions"] == sorted(BUILTIN_ROLES["viewer"])
    assert (await client.get("/v1/me", headers=bearer(tokens["access_token"]))).status_code == 401
    login_there = await login(client, member, org=other.org_slug)
    assert login_there["org_id"] == str(other.org_id)


@pytest.mark.parametrize("field", ["org_id", "role", "is_platform_admin"])
async def test_mass_assignment_fields_are_rejected(
    client: httpx.AsyncClient, owner_token: str, field: str
) -> None:
    response = await client.patch(
        "/v1/me", json={"display_name": "Ada", field: "x"}, headers=bearer(owner_token)
    )
    assert response.status_code == 422
    assert field in response.text


async def test_unknown_email_runs_the_same_hash_as_a_wrong_password(
    client: httpx.AsyncClient, owner: Member, identity: IdentityContext, monkeypatch: Any
) -> None:
    """Comparable timing, shown by the work done rather than by a stopwatch."""
    hasher = identity.passwords._hasher
    verified: list[str] = []

    class Counting:
        def verify(self, hash_: str, password: str) -> bool:
            verified.append(hash_)
            return bool(hasher.verify(hash_, password))

        def __getattr__(self, name: str) -> Any:
            return getattr(hasher, name)

    monkeypatch.setattr(identity.passwords, "_hasher", Counting())
    unknown = await client.post(
        "/v1/auth/login", json={"email": "nobody@example.org", "password": owner.password}
    )
    unknown_hashes, verified[:] = list(verified), []
    wrong = await client.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password + "x"}
    )
    wrong_hashes = list(verified)
    assert unknown.status_code == wrong.status_code == 401
    assert len(unknown_hashes) == len(wrong_hashes) == 1
    # The unknown address was checked against the dummy hash, built with the same
    # parameters as every real one.
    assert unknown_hashes == [identity.passwords._dummy_hash]
    assert wrong_hashes[0] != identity.passwords._dummy_hash

    def params(encoded: str) -> str:
        return encoded.split("$")[3]  # m=...,t=...,p=...

    assert params(unknown_hashes[0]) == params(wrong_hashes[0])


async def test_a_login_rehashes_when_the_parameters_change(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    from assay.app import create_app
    from tests.support.identity import new_member

    async def stored_hash(app: FastAPI, member: Member) -> str:
        async with app.state.database.sessionmaker() as db:
            user = await db.get_one(User, member.user_id)
            assert user.password_hash is not None
            return user.password_hash

    old_app = create_app(settings_factory(database_url=database_url, argon2_time_cost=1))
    async with old_app.router.lifespan_context(old_app):
        member = await new_member(old_app)
        before = await stored_hash(old_app, member)
    assert ",t=1," in before
    new_app = create_app(settings_factory(database_url=database_url, argon2_time_cost=2))
    async with new_app.router.lifespan_context(new_app):
        transport = httpx.ASGITransport(app=new_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await login(http, member)
            after = await stored_hash(new_app, member)
            assert ",t=2," in after
            assert after != before
            # Still the same password, under the new parameters.
            await login(http, member)
            assert await stored_hash(new_app, member) == after


async def _org_status(app: FastAPI, org_id: uuid.UUID | None, status: str) -> None:
    from assay.audit.service import CLI
    from assay.core.principal import PLATFORM
    from assay.orgs import service as orgs

    assert org_id is not None
    async with app.state.database.sessionmaker() as db:
        await orgs.set_organisation_status(db, app.state.identity, CLI, PLATFORM, org_id, status)
        await db.commit()


async def test_a_suspended_first_organisation_is_skipped_and_refusals_are_recorded(
    client: httpx.AsyncClient, make_member: MakeMember, app: FastAPI
) -> None:
    from assay.audit.service import CLI
    from assay.core.principal import PLATFORM
    from assay.orgs import service as orgs

    member = await make_member(role="owner")
    later = await make_member(role="owner")
    assert later.org_id is not None
    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, member.user_id)
        await orgs.add_member(db, CLI, PLATFORM, later.org_id, user, "viewer")
        await db.commit()
    await _org_status(app, member.org_id, "suspended")
    # The oldest membership is suspended: the next active one is used.
    tokens = await login(client, member)
    assert tokens["org_id"] == str(later.org_id)
    # Asking for the suspended one is refused, with the reason on record.
    refused = await client.post(
        "/v1/auth/login",
        json={"email": member.email, "password": member.password, "org": member.org_slug},
    )
    assert refused.status_code == 401
    await _org_status(app, later.org_id, "suspended")
    none_left = await client.post(
        "/v1/auth/login", json={"email": member.email, "password": member.password}
    )
    assert none_left.status_code == 401
    reasons = [
        e.details.get("reason")
        for e in await events(app, "login", actor_id=str(member.user_id))
        if e.outcome == "failure"
    ]
    assert reasons == ["org_inactive", "org_inactive"]


async def test_a_platform_admin_naming_an_unknown_org_is_refused(
    client: httpx.AsyncClient, make_member: MakeMember, app: FastAPI
) -> None:
    admin = await make_member(platform_admin=True, new_org=False)
    # No organisation asked for: an organisation-less session (to enrol MFA first).
    assert (await login(client, admin))["org_id"] is None
    for slug in ("no-such-org", (await make_member()).org_slug):
        refused = await client.post(
            "/v1/auth/login",
            json={"email": admin.email, "password": admin.password, "org": slug},
        )
        assert refused.status_code == 401
        assert refused.json()["detail"] == "The email or password is incorrect."
    reasons = [
        e.details.get("reason")
        for e in await events(app, "login", actor_id=str(admin.user_id))
        if e.outcome == "failure"
    ]
    assert reasons == ["not_member", "not_member"]
