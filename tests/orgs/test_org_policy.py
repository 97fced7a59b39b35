"""An organisation's own rules: MFA for everyone or for roles, and its password minimum.

Set by its owners (`org:manage`) with PATCH /v1/org, or by an operator with
`assay admin org set-policy`; every change is a security event with before and after.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from assay.cli import app as cli_app
from assay.orgs.models import Organisation
from tests.support.identity import (
    MakeMember,
    Member,
    RunningApp,
    bearer,
    enrol_totp,
    events,
    login,
    new_member,
    next_code,
)


async def _full_token_with_mfa(client: httpx.AsyncClient, member: Member) -> str:
    first = (await login(client, member))["access_token"]
    secret, _ = await enrol_totp(client, first)
    challenge = (await login(client, member))["challenge"]
    done = await client.post(
        "/v1/auth/mfa", json={"challenge": challenge, "code": next_code(secret)}
    )
    assert done.status_code == 200, done.text
    token: str = done.json()["access_token"]
    return token


async def _org(app: FastAPI, member: Member) -> Organisation:
    async with app.state.database.sessionmaker() as db:
        return await db.get_one(Organisation, member.org_id)


async def test_requiring_mfa_restricts_members_without_it_at_once(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member, app: FastAPI
) -> None:
    analyst = await make_member(role="analyst", org_slug=owner.org_slug)
    analyst_token = (await login(client, analyst))["access_token"]
    plain_owner = (await login(client, owner))["access_token"]
    # An owner without MFA would lock themselves out: refused, nothing changed.
    refused = await client.patch(
        "/v1/org", json={"mfa_required": True}, headers=bearer(plain_owner)
    )
    assert refused.status_code == 409
    assert "Enrol MFA yourself" in refused.json()["detail"]
    assert (await _org(app, owner)).mfa_required is False

    owner_token = await _full_token_with_mfa(client, owner)
    assert (await client.get("/v1/org/members", headers=bearer(analyst_token))).status_code == 200
    changed = await client.patch(
        "/v1/org", json={"mfa_required": True}, headers=bearer(owner_token)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["mfa_required"] is True
    # The analyst's existing session now reaches only the enrolment routes.
    blocked = await client.get("/v1/org/members", headers=bearer(analyst_token))
    assert blocked.status_code == 403
    assert "mfa enrolment" in blocked.json()["detail"]
    assert (await client.get("/v1/me", headers=bearer(analyst_token))).json()["scope"] == (
        "mfa_enrolment"
    )
    # The owner, who has MFA, keeps full access.
    assert (await client.get("/v1/org/members", headers=bearer(owner_token))).status_code == 200
    [event] = await events(app, "org.updated", org_id=owner.org_id)
    assert event.actor_id == str(owner.user_id)
    assert event.details["before"] == {"mfa_required": False}
    assert event.details["after"] == {"mfa_required": True}
    assert event.details["sessions_restricted"] == 1


async def test_mfa_can_be_required_for_roles_only(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member, app: FastAPI
) -> None:
    owner_token = (await login(client, owner))["access_token"]
    analyst = await make_member(role="analyst", org_slug=owner.org_slug)
    viewer = await make_member(role="viewer", org_slug=owner.org_slug)
    unknown = await client.patch(
        "/v1/org", json={"mfa_required_roles": ["analyst", "wizard"]}, headers=bearer(owner_token)
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0] == {
        "field": "mfa_required_roles",
        "code": "unknown_role",
        "message": "no such role: wizard",
    }
    changed = await client.patch(
        "/v1/org", json={"mfa_required_roles": ["analyst"]}, headers=bearer(owner_token)
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["mfa_required_roles"] == ["analyst"]
    assert (await login(client, analyst))["scope"] == "mfa_enrolment"
    assert (await login(client, viewer))["scope"] == "full"
    # The owner's own role is not named: no MFA needed for them to make the change.
    assert (await client.get("/v1/org", headers=bearer(owner_token))).status_code == 200


async def test_promotion_into_a_role_needing_mfa_restricts_the_members_sessions_at_once(
    running_app: RunningApp,
) -> None:
    """A member promoted into a role the organisation requires MFA of, without MFA, keeps
    signing in only to enrol: their current token, a refreshed one and a new sign-in all
    reach the enrolment routes alone, on every cache backend."""
    async with running_app() as (app, client):
        owner = await new_member(app)
        owner_token = (await login(client, owner))["access_token"]
        required = await client.patch(
            "/v1/org", json={"mfa_required_roles": ["admin"]}, headers=bearer(owner_token)
        )
        assert required.status_code == 200, required.text
        viewer = await new_member(app, role="viewer", org_slug=owner.org_slug)
        signed_in = await login(client, viewer)
        assert signed_in["scope"] == "full"
        token = signed_in["access_token"]
        # Cached as a full-scope session before the promotion.
        assert (await client.get("/v1/org/members", headers=bearer(token))).status_code == 200

        promoted = await client.patch(
            f"/v1/org/members/{viewer.user_id}", json={"role": "admin"}, headers=bearer(owner_token)
        )
        assert promoted.status_code == 200, promoted.text

        blocked = await client.get("/v1/org/members", headers=bearer(token))
        assert blocked.status_code == 403
        assert "mfa enrolment" in blocked.json()["detail"]
        assert (await client.get("/v1/me", headers=bearer(token))).json()["scope"] == (
            "mfa_enrolment"
        )
        refreshed = await client.post(
            "/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["scope"] == "mfa_enrolment"
        assert (await login(client, viewer))["scope"] == "mfa_enrolment"
        [event] = await events(app, "member.role_changed", org_id=owner.org_id)
        assert event.details == {"before": "viewer", "after": "admin", "sessions_restricted": 1}

        # Enrolling ends the restricted session; with MFA, the admin has full access.
        enrolling = refreshed.json()["access_token"]
        secret, _ = await enrol_totp(client, enrolling)
        challenge = (await login(client, viewer))["challenge"]
        done = await client.post(
            "/v1/auth/mfa", json={"challenge": challenge, "code": next_code(secret)}
        )
        assert done.status_code == 200, done.text
        assert done.json()["scope"] == "full"
        full = bearer(done.json()["access_token"])
        assert (await client.get("/v1/org/members", headers=full)).status_code == 200


async def test_promotion_keeps_full_access_for_members_with_mfa_or_roles_without_the_rule(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member, app: FastAPI
) -> None:
    owner_token = (await login(client, owner))["access_token"]
    required = await client.patch(
        "/v1/org", json={"mfa_required_roles": ["admin"]}, headers=bearer(owner_token)
    )
    assert required.status_code == 200, required.text
    with_mfa = await make_member(role="viewer", org_slug=owner.org_slug)
    with_mfa_token = await _full_token_with_mfa(client, with_mfa)
    without_mfa = await make_member(role="viewer", org_slug=owner.org_slug)
    without_mfa_token = (await login(client, without_mfa))["access_token"]
    for member, role in ((with_mfa, "admin"), (without_mfa, "maintainer")):
        changed = await client.patch(
            f"/v1/org/members/{member.user_id}", json={"role": role}, headers=bearer(owner_token)
        )
        assert changed.status_code == 200, changed.text
    for token in (with_mfa_token, without_mfa_token):
        me = await client.get("/v1/me", headers=bearer(token))
        assert me.json()["scope"] == "full"
    assert (await client.get("/v1/org/members", headers=bearer(with_mfa_token))).status_code == 200
    restricted = [
        e.details["sessions_restricted"]
        for e in await events(app, "member.role_changed", org_id=owner.org_id)
    ]
    assert restricted == [0, 0]


async def test_only_org_managers_change_the_policy(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member
) -> None:
    admin = await make_member(role="admin", org_slug=owner.org_slug)
    token = (await login(client, admin))["access_token"]
    denied = await client.patch("/v1/org", json={"name": "Mine now"}, headers=bearer(token))
    assert denied.status_code == 403
    assert "org:manage" in denied.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"mfa_required": None}, "mfa_required"),
        ({"min_password_length": 7}, "body.min_password_length"),
        ({"min_password_length": 129}, "body.min_password_length"),
        ({"org_id": "x"}, "body.org_id"),
        ({"scoring_quota": "1/second"}, "body.scoring_quota"),
    ],
)
async def test_bad_policy_bodies_are_a_clear_422(
    client: httpx.AsyncClient, owner_token: str, body: dict[str, object], field: str
) -> None:
    response = await client.patch("/v1/org", json=body, headers=bearer(owner_token))
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_a_shorter_minimum_needs_mfa_required_and_applies_only_with_mfa(
    client: httpx.AsyncClient, make_member: MakeMember, owner: Member, app: FastAPI
) -> None:
    owner_token = await _full_token_with_mfa(client, owner)
    alone = await client.patch(
        "/v1/org", json={"min_password_length": 10}, headers=bearer(owner_token)
    )
    assert alone.status_code == 422
    assert alone.json()["errors"][0]["code"] == "needs_mfa_required"
    both = await client.patch(
        "/v1/org",
        json={"mfa_required": True, "min_password_length": 10},
        headers=bearer(owner_token),
    )
    assert both.status_code == 200, both.text
    assert both.json()["min_password_length"] == 10
    ten = "Qv7#mZ2!pL"
    # The owner (with MFA) may now use ten characters...
    changed = await client.post(
        "/v1/me/password",
        json={"current_password": owner.password, "new_password": ten},
        headers=bearer(owner_token),
    )
    assert changed.status_code == 204, changed.text
    assert changed.content == b""
    # ...and turning the requirement off while the minimum is short is refused.
    off = await client.patch("/v1/org", json={"mfa_required": False}, headers=bearer(owner_token))
    assert off.status_code == 422
    assert off.json()["errors"][0]["field"] == "min_password_length"
    restored = await client.patch(
        "/v1/org",
        json={"mfa_required": False, "min_password_length": None},
        headers=bearer(owner_token),
    )
    assert restored.status_code == 200
    assert restored.json()["min_password_length"] is None
    assert [e.details["after"] for e in await events(app, "org.updated", org_id=owner.org_id)][
        -1
    ] == {"mfa_required": False, "min_password_length": None}


async def test_a_longer_minimum_applies_to_every_member(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    token = (await login(client, owner))["access_token"]
    raised = await client.patch("/v1/org", json={"min_password_length": 24}, headers=bearer(token))
    assert raised.status_code == 200, raised.text
    short = await client.post(
        "/v1/me/password",
        json={"current_password": owner.password, "new_password": "cobalt-ember-tundra-4"},
        headers=bearer(token),
    )
    assert short.status_code == 422
    assert short.json()["errors"][0]["code"] == "too_short"
    assert "24" in short.json()["errors"][0]["message"]


async def test_an_operator_sets_the_policy_from_the_cli(owner: Member, app: FastAPI) -> None:
    settings = app.state.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(
        {
            "ASSAY_ENV": "test",
            "ASSAY_DATA_DIR": str(settings.data_dir),
            "ASSAY_DATABASE_URL": settings.effective_database_url,
            "ASSAY_ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
            "ASSAY_TOKEN_SIGNING_KEY": settings.token_signing_key.get_secret_value(),
            "ASSAY_SESSION_SECRET": settings.session_secret.get_secret_value(),
        }
    )
    assert owner.org_slug is not None

    def run(*args: str) -> object:
        return CliRunner().invoke(cli_app, ["admin", "org", "set-policy", *args], env=env)

    result = await asyncio.to_thread(
        run,
        "--org",
        owner.org_slug,
        "--mfa-required",
        "--min-password-length",
        "12",
        "--mfa-required-roles",
        "analyst,viewer",
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "minimum password length: 12" in result.stdout  # type: ignore[attr-defined]
    org = await _org(app, owner)
    assert (org.mfa_required, org.min_password_length, org.mfa_required_roles) == (
        True,
        12,
        ["analyst", "viewer"],
    )
    [event] = await events(app, "org.updated", org_id=owner.org_id)
    assert event.actor_kind == "platform"
    bad = await asyncio.to_thread(run, "--org", owner.org_slug, "--no-mfa-required")
    assert bad.exit_code == 2  # type: ignore[attr-defined]
    assert "min_password_length" in bad.stderr  # type: ignore[attr-defined]
    unknown = await asyncio.to_thread(run, "--org", "no-such-org", "--mfa-required")
    assert unknown.exit_code == 2  # type: ignore[attr-defined]
