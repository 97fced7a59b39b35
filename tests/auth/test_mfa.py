from __future__ import annotations

import re

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from assay.accounts.models import User
from assay.auth.deps import IdentityContext
from tests.support.identity import (
    MakeMember,
    Member,
    bearer,
    enrol_totp,
    events,
    login,
    next_code,
    strong_password,
)

from ..conftest import KNOWN_SECRETS


async def test_enrolment_then_sign_in_needs_the_second_factor(
    client: httpx.AsyncClient, owner: Member
) -> None:
    token = (await login(client, owner))["access_token"]
    started = await client.post("/v1/me/mfa/totp", headers=bearer(token))
    body = started.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/Assay:")
    assert body["qr_svg"].startswith("<svg")
    assert len(body["secret"]) >= 32
    secret, backup_codes = await enrol_totp(client, token)
    assert len(backup_codes) == 10
    assert len(set(backup_codes)) == 10

    first = await login(client, owner)
    assert first["mfa_required"] is True
    assert "access_token" not in first
    done = await client.post(
        "/v1/auth/mfa", json={"challenge": first["challenge"], "code": next_code(secret)}
    )
    assert done.status_code == 200, done.text
    me = await client.get("/v1/me", headers=bearer(done.json()["access_token"]))
    assert me.json()["mfa_enabled"] is True


async def test_a_totp_code_is_accepted_only_once(client: httpx.AsyncClient, owner: Member) -> None:
    token = (await login(client, owner))["access_token"]
    started = await client.post("/v1/me/mfa/totp", headers=bearer(token))
    secret = started.json()["secret"]
    KNOWN_SECRETS.add(secret)
    # Replay the very code the enrolment spent: asking pyotp for "now" again could
    # land in the next 30-second step and yield a fresh, legitimately unused code.
    code = pyotp.TOTP(secret).now()
    confirmed = await client.post(
        "/v1/me/mfa/totp/confirm", json={"code": code}, headers=bearer(token)
    )
    assert confirmed.status_code == 200, confirmed.text
    KNOWN_SECRETS.update(confirmed.json()["backup_codes"])
    challenge = (await login(client, owner))["challenge"]
    replay = await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": code})
    assert replay.status_code == 401


async def test_backup_codes_are_single_use(client: httpx.AsyncClient, owner: Member) -> None:
    token = (await login(client, owner))["access_token"]
    _, codes = await enrol_totp(client, token)
    challenge = (await login(client, owner))["challenge"]
    used = await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": codes[0]})
    assert used.status_code == 200
    challenge = (await login(client, owner))["challenge"]
    again = await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": codes[0]})
    assert again.status_code == 401
    other = await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": codes[1]})
    assert other.status_code == 200


async def test_backup_codes_are_stored_hashed(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    token = (await login(client, owner))["access_token"]
    secret, codes = await enrol_totp(client, token)
    from sqlalchemy import select

    from assay.auth.models import BackupCode

    async with app.state.database.sessionmaker() as db:
        stored = (await db.execute(select(BackupCode.code_hash))).scalars().all()
        user = await db.get_one(User, owner.user_id)
    plain = {c.replace("-", "") for c in codes}
    assert not plain & set(stored)
    assert user.totp_secret_encrypted is not None
    assert secret.encode() not in user.totp_secret_encrypted


async def test_disabling_mfa_and_new_backup_codes_need_the_password(
    client: httpx.AsyncClient, owner: Member
) -> None:
    token = (await login(client, owner))["access_token"]
    secret, codes = await enrol_totp(client, token)
    wrong = await client.post(
        "/v1/me/mfa/backup-codes", json={"password": "not-the-password"}, headers=bearer(token)
    )
    assert wrong.status_code == 422
    fresh = await client.post(
        "/v1/me/mfa/backup-codes", json={"password": owner.password}, headers=bearer(token)
    )
    assert fresh.status_code == 200
    new_codes = fresh.json()["backup_codes"]
    challenge = (await login(client, owner))["challenge"]
    voided = await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": codes[0]})
    assert voided.status_code == 401
    works = await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": new_codes[0]})
    assert works.status_code == 200
    disabled = await client.post(
        "/v1/me/mfa/disable", json={"password": owner.password}, headers=bearer(token)
    )
    assert disabled.status_code == 204
    assert "access_token" in await login(client, owner)
    _ = secret


async def test_platform_admins_must_enrol_before_anything_else(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    admin = await make_member(platform_admin=True)
    tokens = await login(client, admin)
    assert tokens["scope"] == "mfa_enrolment"
    restricted = bearer(tokens["access_token"])
    blocked = await client.get("/v1/admin/orgs", headers=restricted)
    assert blocked.status_code == 403
    assert "mfa enrolment" in blocked.json()["detail"]
    assert (await client.get("/v1/me", headers=restricted)).status_code == 200
    secret, _ = await enrol_totp(client, tokens["access_token"])
    # The enrolment-only session ends once it has done its job.
    assert (await client.get("/v1/me", headers=restricted)).status_code == 401
    challenge = (await login(client, admin))["challenge"]
    full = await client.post(
        "/v1/auth/mfa",
        json={"challenge": challenge, "code": next_code(secret)},
    )
    assert full.status_code == 200, full.text
    assert full.json()["scope"] == "full"
    admin_headers = bearer(full.json()["access_token"])
    assert (await client.get("/v1/admin/orgs", headers=admin_headers)).status_code == 200


async def test_organisation_can_require_mfa_for_its_members(
    client: httpx.AsyncClient, make_member: MakeMember, app: FastAPI
) -> None:
    member = await make_member(role="analyst")
    from assay.orgs.models import Organisation

    async with app.state.database.sessionmaker() as db:
        org = await db.get_one(Organisation, member.org_id)
        org.mfa_required = True
        await db.commit()
    tokens = await login(client, member)
    assert tokens["scope"] == "mfa_enrolment"
    denied = await client.get("/v1/org/members", headers=bearer(tokens["access_token"]))
    assert denied.status_code == 403


def test_backup_code_format_is_readable() -> None:
    assert re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", "abcde-fgh23")


async def _enrolled(client: httpx.AsyncClient, member: Member) -> tuple[str, list[str], str]:
    """Enrol TOTP; the secret, the unused backup codes, and a full-scope token.

    The sign-in uses a backup code, so the next TOTP step is still unused.
    """
    first = await login(client, member)
    secret, codes = await enrol_totp(client, first["access_token"])
    challenge = (await login(client, member))["challenge"]
    done = await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": codes[0]})
    assert done.status_code == 200, done.text
    return secret, codes[1:], done.json()["access_token"]


async def _set_org(app: FastAPI, org_id: object, **values: object) -> None:
    from assay.orgs.models import Organisation

    async with app.state.database.sessionmaker() as db:
        org = await db.get_one(Organisation, org_id)
        for name, value in values.items():
            setattr(org, name, value)
        await db.commit()


async def test_a_platform_admin_cannot_turn_mfa_off(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    admin = await make_member(platform_admin=True)
    restricted = (await login(client, admin))["access_token"]
    secret, _ = await enrol_totp(client, restricted)
    challenge = (await login(client, admin))["challenge"]
    token = (
        await client.post("/v1/auth/mfa", json={"challenge": challenge, "code": next_code(secret)})
    ).json()["access_token"]
    refused = await client.post(
        "/v1/me/mfa/disable", json={"password": admin.password}, headers=bearer(token)
    )
    assert refused.status_code == 409
    assert "platform administrators" in refused.json()["detail"]
    assert (await client.get("/v1/me", headers=bearer(token))).json()["mfa_enabled"] is True
    assert (await client.get("/v1/admin/orgs", headers=bearer(token))).status_code == 200
    assert (await login(client, admin))["mfa_required"] is True


@pytest.mark.parametrize("rule", ["everyone", "their_role"])
async def test_a_member_cannot_turn_mfa_off_where_the_org_requires_it(
    client: httpx.AsyncClient, make_member: MakeMember, app: FastAPI, rule: str
) -> None:
    analyst = await make_member(role="analyst")
    viewer = await make_member(role="viewer", org_slug=analyst.org_slug)
    _, _, analyst_token = await _enrolled(client, analyst)
    _, _, viewer_token = await _enrolled(client, viewer)
    if rule == "everyone":
        await _set_org(app, analyst.org_id, mfa_required=True)
    else:
        await _set_org(app, analyst.org_id, mfa_required_roles=["analyst"])
    refused = await client.post(
        "/v1/me/mfa/disable", json={"password": analyst.password}, headers=bearer(analyst_token)
    )
    assert refused.status_code == 409
    assert analyst.org_slug is not None
    viewer_off = await client.post(
        "/v1/me/mfa/disable", json={"password": viewer.password}, headers=bearer(viewer_token)
    )
    assert viewer_off.status_code == (409 if rule == "everyone" else 204)


async def test_a_challenge_completes_only_once(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    secret, codes, _ = await _enrolled(client, owner)
    challenge = (await login(client, owner))["challenge"]
    first = await client.post(
        "/v1/auth/mfa", json={"challenge": challenge, "code": next_code(secret)}
    )
    assert first.status_code == 200, first.text
    # The same challenge with a factor nobody has used yet is still refused.
    for replay_code in codes[:2]:
        replay = await client.post(
            "/v1/auth/mfa", json={"challenge": challenge, "code": replay_code}
        )
        assert replay.status_code == 401
    reasons = [e.details.get("reason") for e in await events(app, "mfa.verify")]
    assert "challenge_used" in reasons


async def test_a_password_change_voids_pending_challenges(
    client: httpx.AsyncClient, owner: Member, app: FastAPI, identity: IdentityContext
) -> None:
    secret, _, _ = await _enrolled(client, owner)
    challenge = (await login(client, owner))["challenge"]
    from assay.auth.credentials.users import set_password

    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, owner.user_id)
        await set_password(db, identity, user, strong_password())
        await db.commit()
    late = await client.post(
        "/v1/auth/mfa",
        json={"challenge": challenge, "code": next_code(secret)},
    )
    assert late.status_code == 401


@pytest.mark.parametrize("fate", ["suspended", "deleted", "membership_removed"])
async def test_a_challenge_never_signs_in_to_another_organisation(
    client: httpx.AsyncClient, make_member: MakeMember, app: FastAPI, fate: str
) -> None:
    from assay.audit.service import CLI
    from assay.core.principal import PLATFORM, platform_in
    from assay.orgs import members
    from assay.orgs import service as orgs

    first = await make_member(role="owner")
    second = await make_member(role="owner")
    async with app.state.database.sessionmaker() as db:
        user = await db.get_one(User, first.user_id)
        assert second.org_id is not None
        await orgs.add_member(db, CLI, PLATFORM, second.org_id, user, "viewer")
        await db.commit()
    secret, _, _ = await _enrolled(client, first)
    challenge = (await login(client, first, org=second.org_slug))["challenge"]
    async with app.state.database.sessionmaker() as db:
        identity = app.state.identity
        if fate == "suspended":
            await orgs.set_organisation_status(
                db, identity, CLI, PLATFORM, second.org_id, "suspended"
            )
        elif fate == "deleted":
            await orgs.delete_organisation(db, identity, CLI, PLATFORM, second.org_id)
        else:
            await members.remove_member(
                db, identity, CLI, platform_in(second.org_id), first.user_id
            )
        await db.commit()
    refused = await client.post(
        "/v1/auth/mfa",
        json={"challenge": challenge, "code": next_code(secret)},
    )
    # Not a session in the first organisation instead.
    assert refused.status_code == 401
    assert "access_token" not in refused.text
    [event] = [
        e
        for e in await events(app, "mfa.verify", actor_id=str(first.user_id))
        if e.outcome == "failure"
    ]
    assert event.details["reason"] in ("org_inactive", "not_member")
