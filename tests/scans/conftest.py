"""Scan fixtures: the mock AI targets on loopback (nothing else is reachable: the network
layer dials loopback only), an organisation with the red-team pack, and targets
registered through the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assay.mock_target.background import BackgroundTarget, serve_in_background
from assay.settings import Settings
from tests.conftest import KNOWN_SECRETS
from tests.support.identity import Member, bearer, login
from tests.support.models import import_pack_into

PACK = Path(__file__).resolve().parents[2] / "examples" / "redteam"
TARGET_KEY = "sk-test-target-key-0123456789"
SYSTEM_PROMPT = "You are the help desk of Example Corp. Answer questions about orders."
KNOWN_SECRETS.add(TARGET_KEY)


@pytest.fixture
def target_mock() -> Iterator[BackgroundTarget]:
    running = serve_in_background()
    try:
        yield running
    finally:
        running.stop()


def scan_settings(**overrides: Any) -> dict[str, Any]:
    return {
        # The mock lives on loopback; only 127.0.0.1 is opened, nothing else.
        "outbound_allowed_networks": ["127.0.0.1/32"],
        "rate_limit_management": "1000000/minute",
        **overrides,
    }


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], database_url: str, target_mock: BackgroundTarget
) -> Settings:
    return settings_factory(database_url=database_url, **scan_settings())


@dataclass
class Scanner:
    member: Member
    token: str
    mock: BackgroundTarget

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def chat_target(mock: BackgroundTarget, mode: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "openai_chat",
        "url": f"{mock.base_url}/{mode}/v1/chat/completions",
        "model": "mock-chat-1",
        "system_prompt": SYSTEM_PROMPT,
        "requests_per_minute": 6000,
        "concurrency": 4,
        "timeout_seconds": 10,
        **extra,
    }


async def register_target(
    client: httpx.AsyncClient, scanner: Scanner, name: str, body: dict[str, Any]
) -> dict[str, Any]:
    saved = await client.put(f"/v1/targets/{name}", json=body, headers=scanner.headers)
    assert saved.status_code == 200, saved.text
    keyed = await client.put(
        f"/v1/targets/{name}/credential", json={"credential": TARGET_KEY}, headers=scanner.headers
    )
    assert keyed.status_code == 204, keyed.text
    answer: dict[str, Any] = saved.json()
    return answer


async def ready_scanner(
    app: FastAPI, client: httpx.AsyncClient, member: Member, mock: BackgroundTarget
) -> Scanner:
    """The red-team pack imported, a vulnerable and a refusing chat target registered."""
    await import_pack_into(app, member.org_id, PACK)
    token = (await login(client, member))["access_token"]
    scanner = Scanner(member, token, mock)
    await register_target(client, scanner, "vulnerable", chat_target(mock, "vulnerable"))
    await register_target(client, scanner, "refusing", chat_target(mock, "refusing"))
    return scanner


@pytest.fixture
async def scanner(
    app: FastAPI, client: httpx.AsyncClient, owner: Member, target_mock: BackgroundTarget
) -> Scanner:
    return await ready_scanner(app, client, owner, target_mock)


async def start_scan(client: httpx.AsyncClient, scanner: Scanner, **body: Any) -> dict[str, Any]:
    answer = await client.post("/v1/scans", json=body, headers=scanner.headers)
    assert answer.status_code == 202, answer.text
    started: dict[str, Any] = answer.json()
    return started


async def wait_for_scan(
    client: httpx.AsyncClient,
    scanner: Scanner,
    scan_id: str,
    done: Callable[[dict[str, Any]], bool] = lambda s: (
        s["state"] in ("succeeded", "failed", "cancelled")
    ),
) -> dict[str, Any]:
    """Bounded polling of the scan until `done` holds."""
    scan: dict[str, Any] = {}
    for _ in range(3000):
        answer = await client.get(f"/v1/scans/{scan_id}", headers=scanner.headers)
        assert answer.status_code == 200, answer.text
        scan = answer.json()
        if done(scan):
            return scan
        await asyncio.sleep(0.02)
    raise AssertionError(f"the scan never got there: {scan}")


def mock_requests(mock: BackgroundTarget) -> list[dict[str, Any]]:
    answer = httpx.get(f"{mock.base_url}/_mock/requests", timeout=10)
    answer.raise_for_status()
    entries: list[dict[str, Any]] = answer.json()["requests"]
    return entries


async def all_attempts(
    client: httpx.AsyncClient, scanner: Scanner, scan_id: str, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = -1
    while True:
        page = await client.get(
            f"/v1/scans/{scan_id}/attempts",
            params={"after": after, "limit": 100, **params},
            headers=scanner.headers,
        )
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        if body["next_after"] is None:
            return items
        after = body["next_after"]
