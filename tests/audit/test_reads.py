"""Reads of sensitive data are audit events, written off the request path in batches and
at shutdown: unsealed prediction inputs (with the reader), member lists, providers,
lookups, scan results."""

from __future__ import annotations

import copy
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from assay.app import create_app
from assay.audit.models import SecurityAction, SecurityEvent
from assay.core.tenancy import across_tenants
from assay.settings import Settings
from tests.support.identity import MakeMember, Member, bearer, login
from tests.support.models import RULES_MANIFEST, auth, register_rules_model

PASSING = {"amount": 5000, "country": "GB"}


async def _reads(app: FastAPI, action: SecurityAction) -> list[SecurityEvent]:
    async with app.state.database.sessionmaker() as db:
        statement = select(SecurityEvent).where(SecurityEvent.action == str(action))
        return list((await db.scalars(across_tenants(statement, "test: audited reads"))).all())


async def test_revealing_a_records_sealed_inputs_is_audited_with_the_reader(
    client: httpx.AsyncClient,
    app: FastAPI,
    owner: Member,
    owner_token: str,
    make_member: MakeMember,
) -> None:
    manifest = copy.deepcopy(RULES_MANIFEST)
    manifest["records"] = {"pii": "encrypt"}
    await register_rules_model(client, owner_token, manifest=manifest)
    scored = await client.post(
        "/v1/models/fraud-rules/predict",
        json={"record": {**PASSING, "email": "grace@example.org"}},
        headers=auth(owner_token),
    )
    assert scored.status_code == 200
    await app.state.predictions.recorder.flush()
    [listed] = (await client.get("/v1/predictions", headers=auth(owner_token))).json()["items"]
    assert "email" not in listed["inputs"]  # the list never opens sealed fields

    revealed = await client.get(f"/v1/predictions/{listed['id']}/inputs", headers=auth(owner_token))
    assert revealed.status_code == 200, revealed.text
    assert revealed.json()["inputs"] == {**PASSING, "email": "grace@example.org"}
    assert revealed.json()["sealed_fields"] == ["email"]
    # Not yet written: reads leave the request path.
    assert await _reads(app, SecurityAction.PREDICTION_INPUTS_REVEALED) == []
    assert await app.state.audit_reads.flush() == 1
    [event] = await _reads(app, SecurityAction.PREDICTION_INPUTS_REVEALED)
    assert event.actor_id == str(owner.user_id)
    assert event.org_id == owner.org_id
    assert event.target_id == listed["id"]
    assert event.details == {"model": "fraud-rules", "fields": ["email"]}
    assert "grace@example.org" not in str(event.details)

    for role in ("maintainer", "viewer"):
        member = await make_member(role=role, org_slug=owner.org_slug)
        token = (await login(client, member))["access_token"]
        denied = await client.get(f"/v1/predictions/{listed['id']}/inputs", headers=bearer(token))
        assert denied.status_code == 403, role
    missing = await client.get(f"/v1/predictions/{uuid.uuid4()}/inputs", headers=auth(owner_token))
    assert missing.status_code == 404


async def test_member_lists_and_providers_are_audited_reads_written_at_shutdown(
    app: FastAPI, settings: Settings, owner_token: str
) -> None:
    second = create_app(settings)
    async with second.router.lifespan_context(second):
        transport = httpx.ASGITransport(app=second, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/v1/org/members", headers=auth(owner_token))).status_code == 200
            assert (await http.get("/v1/providers", headers=auth(owner_token))).status_code == 200
        assert second.state.audit_reads.pending == 2
        assert await _reads(app, SecurityAction.MEMBERS_LISTED) == []
    [listed] = await _reads(app, SecurityAction.MEMBERS_LISTED)
    assert listed.details == {"members": 1}
    assert len(await _reads(app, SecurityAction.PROVIDERS_READ)) == 1
