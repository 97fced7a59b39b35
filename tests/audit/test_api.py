"""/v1/audit: verify, events, export and the public key, behind `audit:read`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from assay.audit.models import SecurityEvent
from assay.audit_trail.service import verify_export
from assay.audit_trail.signing import CheckpointSigner, SignatureChecker
from tests.support.identity import MakeMember, bearer, events, login

from .conftest import chain_rows, write_events

ROUTES = ("/v1/audit/events", "/v1/audit/verify", "/v1/audit/export", "/v1/audit/public-key")


async def _token(
    client: httpx.AsyncClient, make_member: MakeMember, role: str = "owner"
) -> tuple[str, object]:
    member = await make_member(role=role)
    return (await login(client, member))["access_token"], member.org_id


@pytest.mark.parametrize("role", ["viewer", "analyst", "maintainer"])
async def test_roles_without_audit_read_are_refused(
    client: httpx.AsyncClient, make_member: MakeMember, role: str
) -> None:
    token, _ = await _token(client, make_member, role)
    for path in ROUTES:
        response = await client.get(path, headers=bearer(token))
        assert response.status_code == 403, (path, response.text)
        assert "audit:read" in response.json()["detail"]


async def test_an_admin_verifies_the_chain_and_the_check_is_recorded(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    token, org_id = await _token(client, make_member, "admin")
    await write_events(app, org_id, 4)  # type: ignore[arg-type]
    response = await client.get("/v1/audit/verify", headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True
    assert body["chain"] == str(org_id)
    assert body["problem"] is None
    assert body["events"] == body["head_seq"] >= 4
    [recorded] = await events(app, "audit.verified", org_id=org_id)
    assert recorded.outcome == "success"


async def test_the_api_names_an_edited_event(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    token, org_id = await _token(client, make_member)
    await write_events(app, org_id, 3)  # type: ignore[arg-type]
    await app.state.audit_trail.chain_pending()
    victim = (await chain_rows(app, org_id))[1]  # type: ignore[arg-type]
    async with app.state.database.sessionmaker() as db:
        await db.execute(
            update(SecurityEvent).where(SecurityEvent.id == victim.id).values(actor_id="someone")
        )
        await db.commit()
    body = (await client.get("/v1/audit/verify", headers=bearer(token))).json()
    assert body["ok"] is False
    assert body["problem"]["kind"] == "edited"
    assert body["problem"]["seq"] == victim.seq
    assert body["problem"]["event_id"] == str(victim.id)
    [recorded] = await events(app, "audit.verified", org_id=org_id)
    assert recorded.outcome == "failure"


async def test_events_are_filtered_paged_and_their_reading_recorded(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    token, org_id = await _token(client, make_member)
    await write_events(app, org_id, 5)  # type: ignore[arg-type]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"action": "org.updated", "limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/v1/audit/events", params=params, headers=bearer(token))
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        assert {item["action"] for item in page["items"]} == {"org.updated"}
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    failures = await client.get(
        "/v1/audit/events", params={"outcome": "failure"}, headers=bearer(token)
    )
    assert failures.json()["items"] == []
    for params, count in (
        ({"actor": "nobody", "action": "org.updated"}, 0),
        ({"action": "org.updated", "target_kind": "organisation", "target_id": str(org_id)}, 5),
        ({"action": "org.updated", "since": "2999-01-01T00:00:00Z"}, 0),
        ({"action": "org.updated", "until": "2999-01-01T00:00:00+00:00"}, 5),
        ({"action": "org.updated", "until": "2000-01-01T00:00:00Z"}, 0),
    ):
        found = await client.get("/v1/audit/events", params=params, headers=bearer(token))
        assert found.status_code == 200, found.text
        assert len(found.json()["items"]) == count, params
    reads = await events(app, "audit.read", org_id=org_id)
    assert len(reads) == 9
    assert reads[0].details["filter"] == {"action": "org.updated"}
    # The reads themselves are listed, and sealed like any other event.
    await app.state.audit_trail.chain_pending()
    listed = await client.get(
        "/v1/audit/events", params={"action": "audit.read"}, headers=bearer(token)
    )
    assert len(listed.json()["items"]) == 9
    assert all(item["seq"] and item["hash"] for item in listed.json()["items"])


async def test_a_bad_cursor_is_a_422_naming_it(
    client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    token, _ = await _token(client, make_member)
    response = await client.get(
        "/v1/audit/events", params={"cursor": "not-a-cursor"}, headers=bearer(token)
    )
    assert response.status_code == 422
    assert "query.cursor" in response.text


async def test_an_export_verifies_offline_with_the_published_key(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember, tmp_path: Path
) -> None:
    token, org_id = await _token(client, make_member)
    await write_events(app, org_id, 4)  # type: ignore[arg-type]
    key = (await client.get("/v1/audit/public-key", headers=bearer(token))).json()
    assert key["algorithm"] == "Ed25519"
    response = await client.get("/v1/audit/export", headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jsonl")
    export = tmp_path / "audit.jsonl"
    export.write_text(response.text, encoding="utf-8")
    records = [json.loads(line) for line in response.text.splitlines()]
    header = records[0]
    assert header["chain"] == str(org_id)
    assert header["key_id"] == key["key_id"]
    assert records[-1]["type"] == "checkpoint"
    assert records[-1]["seq"] == header["head_seq"]
    checker = SignatureChecker.from_pem(key["public_key_pem"].encode())
    report = verify_export(export, checker)
    assert report.ok, report.problem
    assert report.head_seq == header["head_seq"]
    assert await events(app, "audit.exported", org_id=org_id)

    # An edited line, and a cut tail, are each found in the file.
    edited = [dict(r) for r in records]
    edited[2]["outcome"] = "failure"
    export.write_text("".join(json.dumps(r) + "\n" for r in edited), encoding="utf-8")
    problem = verify_export(export, checker).problem
    assert problem is not None
    assert (problem.kind, problem.event_id) == ("edited", edited[2]["id"])
    events_only = [r for r in records if r["type"] == "event"]
    cut = [header, *events_only[:-1], *[r for r in records if r["type"] == "checkpoint"]]
    export.write_text("".join(json.dumps(r) + "\n" for r in cut), encoding="utf-8")
    problem = verify_export(export, checker).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("truncated", header["head_seq"])
    # Another installation's key does not vouch for these checkpoints.
    export.write_text(response.text, encoding="utf-8")
    other = CheckpointSigner.from_secret("another-installation-secret-0123456789")
    problem = verify_export(export, other.checker()).problem
    assert problem is not None
    assert problem.kind == "checkpoint"
