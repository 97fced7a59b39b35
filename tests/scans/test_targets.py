"""Targets through the API: registering, write-only secrets, templates that cannot place
the prompt safely, and the outbound guard on every request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from assay.core.tenancy import across_tenants
from assay.targets.models import TargetRow
from tests.scans.conftest import SYSTEM_PROMPT, TARGET_KEY, Scanner, chat_target, register_target
from tests.support.identity import bearer, login, new_member

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_secrets_are_write_only_and_sealed(
    client: httpx.AsyncClient, scanner: Scanner, app: FastAPI
) -> None:
    listed = await client.get("/v1/targets", headers=scanner.headers)
    assert listed.status_code == 200
    names = {t["name"]: t for t in listed.json()}
    assert names["vulnerable"]["credential_set"] is True
    assert names["vulnerable"]["system_prompt_set"] is True
    for answer in (listed, await client.get("/v1/targets/vulnerable", headers=scanner.headers)):
        assert TARGET_KEY not in answer.text
        assert SYSTEM_PROMPT not in answer.text
    async with app.state.database.sessionmaker() as db:
        rows = (await db.scalars(across_tenants(select(TargetRow), "test: sealed"))).all()
    for row in rows:
        assert TARGET_KEY.encode() not in (row.credential_encrypted or b"")
        assert SYSTEM_PROMPT.encode() not in (row.system_prompt_encrypted or b"")
    # Saving again without a system prompt keeps it; an empty one clears it.
    body = chat_target(scanner.mock, "vulnerable")
    del body["system_prompt"]
    kept = await client.put("/v1/targets/vulnerable", json=body, headers=scanner.headers)
    assert kept.json()["system_prompt_set"] is True
    cleared = await client.put(
        "/v1/targets/vulnerable", json={**body, "system_prompt": ""}, headers=scanner.headers
    )
    assert cleared.json()["system_prompt_set"] is False


async def test_the_check_sends_one_harmless_prompt(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    answer = await client.post("/v1/targets/vulnerable/check", headers=scanner.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] is True
    assert answer.json()["answer_excerpt"]
    await client.put(
        "/v1/targets/vulnerable/credential", json={"credential": None}, headers=scanner.headers
    )
    refused = (await client.post("/v1/targets/vulnerable/check", headers=scanner.headers)).json()
    assert refused["ok"] is False
    assert "401" in refused["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "rest", "url": "https://ai.example/x"}, "rest"),
        (
            {
                "kind": "rest",
                "url": "https://ai.example/x",
                "rest": {"body": {"q": "say {{prompt}} now"}, "answer_path": "a"},
            },
            "rest.body",
        ),
        (
            {
                "kind": "rest",
                "url": "https://ai.example/x",
                "rest": {"body": {"a": "{{prompt}}", "b": "{{prompt}}"}, "answer_path": "a"},
            },
            "rest.body",
        ),
        ({"kind": "openai_chat", "url": "https://ai.example/x"}, "model"),
        ({"kind": "openai_chat", "url": "ftp://ai.example/x", "model": "m"}, "url"),
        (
            {"kind": "openai_chat", "url": "https://ai.example/x", "model": "m", "concurrency": 99},
            "concurrency",
        ),
    ],
    ids=[
        "rest-without-template",
        "prompt-inside-a-string",
        "two-prompts",
        "chat-without-model",
        "ftp",
        "concurrency",
    ],
)
async def test_targets_that_cannot_be_used_are_refused(
    client: httpx.AsyncClient, scanner: Scanner, body: dict[str, Any], field: str
) -> None:
    answer = await client.put("/v1/targets/bad", json=body, headers=scanner.headers)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["type"].endswith((":validation-failed", ":target-invalid"))
    assert any(e["field"].removeprefix("body.").startswith(field) for e in problem["errors"]), (
        problem
    )


async def test_a_target_on_a_private_address_is_never_reached(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    body = chat_target(scanner.mock, "vulnerable")
    body["url"] = "https://10.0.0.7/v1/chat/completions"
    await register_target(client, scanner, "internal", body)
    body["url"] = "https://169.254.169.254/latest/meta-data"
    await register_target(client, scanner, "metadata", body)
    for name in ("internal", "metadata"):
        checked = (await client.post(f"/v1/targets/{name}/check", headers=scanner.headers)).json()
        assert checked["ok"] is False
        assert "refused" in checked["detail"]


async def test_who_may_see_and_change_targets(
    client: httpx.AsyncClient, scanner: Scanner, app: FastAPI
) -> None:
    analyst = await new_member(app, role="analyst", org_slug=scanner.member.org_slug)
    token = (await login(client, analyst))["access_token"]
    assert (await client.get("/v1/targets", headers=bearer(token))).status_code == 200
    body = chat_target(scanner.mock, "vulnerable")
    denied = await client.put("/v1/targets/mine", json=body, headers=bearer(token))
    assert denied.status_code == 403
    viewer = await new_member(app, role="viewer", org_slug=scanner.member.org_slug)
    viewer_token = (await login(client, viewer))["access_token"]
    assert (await client.get("/v1/targets", headers=bearer(viewer_token))).status_code == 403
    outsider = await new_member(app)
    outsider_token = (await login(client, outsider))["access_token"]
    assert (
        await client.get("/v1/targets/vulnerable", headers=bearer(outsider_token))
    ).status_code == 404
    deleted = await client.delete("/v1/targets/refusing", headers=scanner.headers)
    assert deleted.status_code == 204
    assert (await client.get("/v1/targets/refusing", headers=scanner.headers)).status_code == 404
