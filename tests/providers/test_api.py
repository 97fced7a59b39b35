"""/v1/providers: register, replace, list with breaker state, write-only credentials,
refusals that name the problem, tenant isolation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from assay.core.tenancy import across_tenants
from assay.providers.models import ConfiguredProviderRow
from assay.providers.service import builtin_definition
from assay.settings import Settings
from tests.conftest import KNOWN_SECRETS
from tests.support.identity import MakeMember, Member, bearer, events, login

SECRET = "provider-api-key-4f1e9a"
KNOWN_SECRETS.add(SECRET)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(database_url=f"sqlite:///{tmp_path / 'assay.db'}")


@pytest.fixture
async def token(client: httpx.AsyncClient, owner: Member) -> str:
    return str((await login(client, owner))["access_token"])


async def _save(
    client: httpx.AsyncClient, token: str, name: str, document: dict[str, Any]
) -> httpx.Response:
    return await client.put(
        f"/v1/providers/{name}", json={"definition": document}, headers=bearer(token)
    )


async def test_a_provider_is_registered_listed_and_replaced_keeping_its_credential(
    app: FastAPI, client: httpx.AsyncClient, token: str
) -> None:
    saved = await _save(client, token, "abuseipdb", builtin_definition("abuseipdb"))
    assert saved.status_code == 200, saved.text
    assert saved.json()["supports"] == ["ipv4", "ipv6"]
    assert saved.json()["credential_set"] is False

    answer = await client.put(
        "/v1/providers/abuseipdb/credential", json={"credential": SECRET}, headers=bearer(token)
    )
    assert answer.status_code == 204
    changed = {**builtin_definition("abuseipdb"), "rate_limit": "10/minute"}
    replaced = await _save(client, token, "abuseipdb", changed)
    assert replaced.json()["rate_limit"] == "10/minute"
    assert replaced.json()["credential_set"] is True

    listed = await client.get("/v1/providers", headers=bearer(token))
    (only,) = listed.json()
    assert only["breaker"] == {"state": "closed", "recent_failures": 0, "cooldown_until": None}
    # Write-only: the key appears in no answer, and is sealed in the database.
    detail = await client.get("/v1/providers/abuseipdb", headers=bearer(token))
    for response in (saved, replaced, listed, detail):
        assert SECRET not in response.text
    async with app.state.database.sessionmaker() as db:
        row = await db.scalar(
            across_tenants(select(ConfiguredProviderRow), "test reads the sealed credential")
        )
    assert row is not None
    assert row.credential_encrypted is not None
    assert SECRET.encode() not in row.credential_encrypted
    assert [e.action for e in await events(app, "provider.credential_set")] == [
        "provider.credential_set"
    ]


async def test_a_bad_definition_is_refused_with_each_problem(
    client: httpx.AsyncClient, token: str
) -> None:
    document = {**builtin_definition("virustotal"), "link": "https://x.test/{secret}"}
    answer = await _save(client, token, "virustotal", document)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"] == "urn:assay:problem:provider-invalid"
    assert problem["errors"][0]["field"] == "link"
    assert "unknown placeholder {secret}" in problem["errors"][0]["message"]

    other = await _save(client, token, "not-virustotal", builtin_definition("virustotal"))
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "mismatch"

    local = {**builtin_definition("virustotal"), "base_url": "file:///etc/passwd"}
    assert (await _save(client, token, "virustotal", local)).status_code == 422


async def test_providers_of_another_organisation_are_not_found(
    client: httpx.AsyncClient, token: str, make_member: MakeMember
) -> None:
    await _save(client, token, "urlhaus", builtin_definition("urlhaus"))
    stranger = await make_member()
    theirs = bearer((await login(client, stranger))["access_token"])
    assert (await client.get("/v1/providers/urlhaus", headers=theirs)).status_code == 404
    assert (await client.get("/v1/providers", headers=theirs)).json() == []
    gone = await client.delete("/v1/providers/urlhaus", headers=theirs)
    assert gone.status_code == 404
    credential = await client.put(
        "/v1/providers/urlhaus/credential", json={"credential": SECRET}, headers=theirs
    )
    assert credential.status_code == 404

    assert (await client.delete("/v1/providers/urlhaus", headers=bearer(token))).status_code == 204
    assert (await client.get("/v1/providers/urlhaus", headers=bearer(token))).status_code == 404


async def test_an_analyst_reads_providers_but_cannot_change_them(
    client: httpx.AsyncClient, token: str, owner: Member, make_member: MakeMember
) -> None:
    await _save(client, token, "urlhaus", builtin_definition("urlhaus"))
    analyst = await make_member(role="analyst", org_slug=owner.org_slug)
    theirs_token = (await login(client, analyst))["access_token"]
    theirs = bearer(theirs_token)
    assert (await client.get("/v1/providers", headers=theirs)).status_code == 200
    refused = await client.put(
        "/v1/providers/urlhaus/credential", json={"credential": SECRET}, headers=theirs
    )
    assert refused.status_code == 403
    saved = await _save(client, theirs_token, "urlhaus", builtin_definition("urlhaus"))
    assert saved.status_code == 403
