"""Lookup fixtures: an app whose built-in providers point at the mock providers on
loopback (nothing else is reachable: the network layer dials loopback only), and an
organisation with the threat-intelligence pack and the three providers registered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assay.providers.service import BUILTIN_NAMES, builtin_definition
from assay.settings import Settings
from tests.conftest import KNOWN_SECRETS
from tests.support.identity import Member, bearer, login
from tests.support.mock_providers import RunningMockProviders, running_mock_providers
from tests.support.models import import_pack_into

PACK = Path(__file__).resolve().parents[2] / "examples" / "threat_intel"
# Fake keys for the mock, which only checks that one is sent.
CREDENTIALS = {
    "virustotal": "vt-test-key-0123456789",
    "abuseipdb": "abuse-test-key-0123456789",
    "urlhaus": "urlhaus-test-key-0123456789",
}
KNOWN_SECRETS.update(CREDENTIALS.values())


@pytest.fixture
def mock() -> Iterator[RunningMockProviders]:
    with running_mock_providers() as running:
        yield running


def provider_settings(mock: RunningMockProviders, **overrides: Any) -> dict[str, Any]:
    return {
        # The mock lives on loopback; only 127.0.0.1 is opened, nothing else.
        "outbound_allowed_networks": ["127.0.0.1/32"],
        "provider_base_urls": {
            "virustotal": mock.virustotal_url,
            "abuseipdb": mock.abuseipdb_url,
            "urlhaus": mock.urlhaus_url,
        },
        **overrides,
    }


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], database_url: str, mock: RunningMockProviders
) -> Settings:
    return settings_factory(database_url=database_url, **provider_settings(mock))


@dataclass
class Analyst:
    """An owner of an organisation with the pack and the three providers ready."""

    member: Member
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


async def ready_organisation(
    app: FastAPI,
    client: httpx.AsyncClient,
    member: Member,
    *,
    definitions: dict[str, dict[str, Any]] | None = None,
) -> Analyst:
    """Import the pack, register the built-in providers (or `definitions`) through the
    API, and set their credentials."""
    await import_pack_into(app, member.org_id, PACK)
    token = (await login(client, member))["access_token"]
    documents = definitions or {name: builtin_definition(name) for name in BUILTIN_NAMES}
    for name, document in documents.items():
        saved = await client.put(
            f"/v1/providers/{name}", json={"definition": document}, headers=bearer(token)
        )
        assert saved.status_code == 200, saved.text
        if name in CREDENTIALS:
            answer = await client.put(
                f"/v1/providers/{name}/credential",
                json={"credential": CREDENTIALS[name]},
                headers=bearer(token),
            )
            assert answer.status_code == 204, answer.text
    return Analyst(member, token)


@pytest.fixture
async def analyst(app: FastAPI, client: httpx.AsyncClient, owner: Member) -> Analyst:
    return await ready_organisation(app, client, owner)


async def look_up(
    client: httpx.AsyncClient, analyst: Analyst, indicator: str, **extra: Any
) -> dict[str, Any]:
    answer = await client.post(
        "/v1/lookups", json={"indicator": indicator, **extra}, headers=analyst.headers
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def by_provider(lookup: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["provider"]: entry for entry in lookup["results"]}
