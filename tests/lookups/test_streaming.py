"""Results stream as each provider finishes: the service yields them in completion order,
and POST /v1/lookups with Accept: text/event-stream sends them as `provider` events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assay.core.principal import platform_in
from assay.lookups.models import Lookup
from assay.providers.results import ProviderResult
from assay.providers.service import BUILTIN_NAMES, builtin_definition
from assay.settings import Settings
from tests.jobs.support import sse_events
from tests.lookups.conftest import provider_settings, ready_organisation
from tests.support.identity import Member
from tests.support.mock_providers import RunningMockProviders


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, mock: RunningMockProviders
) -> Settings:
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}", **provider_settings(mock)
    )


class Gate:
    """A provider on loopback that holds every answer until the test opens the gate."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.waiting = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.waiting += 1
        await self.opened.wait()
        body = json.dumps({"data": {"verdict": "bad"}}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    async def stop(self) -> None:
        self.opened.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    held = Gate()
    await held.start()
    yield held
    await held.stop()


def _gated(port: int) -> dict[str, Any]:
    return {
        "format": "assay-provider/v1",
        "name": "gated",
        "title": "Held until the test says so",
        "base_url": f"http://127.0.0.1:{port}/api",
        "requests": [
            {
                "types": ["ipv4"],
                "path": ["check", "{indicator}"],
                "fields": {"verdict": {"path": "data.verdict", "type": "string"}},
                "score": "verdict == 'bad' ? 100.0 : 0.0",
                "evidence": "{verdict}",
            }
        ],
    }


async def test_each_result_is_yielded_when_its_provider_finishes(
    app: FastAPI, client: httpx.AsyncClient, owner: Member, gate: Gate
) -> None:
    definitions = {name: builtin_definition(name) for name in BUILTIN_NAMES}
    definitions["gated"] = _gated(gate.port)
    await ready_organisation(app, client, owner, definitions=definitions)
    assert owner.org_id is not None
    principal = platform_in(owner.org_id)
    lookups = app.state.lookups
    indicator, configured, served = await lookups.prepare(principal, "185.220.101.34", None)
    stream = lookups.run(
        principal, indicator, configured, served, force_refresh=False, request_id=None
    )

    first = await anext(stream)
    # The gated provider was asked and is still holding its answer: the first result
    # came from a provider that finished before it, not at the end of the lookup.
    assert isinstance(first, ProviderResult)
    assert first.provider in BUILTIN_NAMES
    assert gate.waiting == 1
    assert not gate.opened.is_set()

    gate.opened.set()
    rest = [item async for item in stream]
    assert isinstance(rest[-1], Lookup)
    finished = [first.provider] + [r.provider for r in rest[:-1]]
    assert sorted(finished) == sorted([*BUILTIN_NAMES, "gated"])
    gated = next(r for r in rest[:-1] if r.provider == "gated")
    assert (gated.status, gated.score, gated.evidence) == ("ok", 100.0, "bad")


async def test_the_event_stream_sends_providers_then_the_verdict_then_done(
    app: FastAPI, client: httpx.AsyncClient, owner: Member
) -> None:
    analyst = await ready_organisation(app, client, owner)
    answer = await client.post(
        "/v1/lookups",
        json={"indicator": "185.220.101.34"},
        headers={**analyst.headers, "accept": "text/event-stream"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [e for e in sse_events(answer.text) if "event" in e]
    assert [e["event"] for e in events] == ["provider"] * 3 + ["verdict", "done"]
    assert sorted(e["data"]["provider"] for e in events[:3]) == sorted(BUILTIN_NAMES)
    assert events[3]["data"]["verdict"] == "malicious"
    stored = await client.get(f"/v1/lookups/{events[3]['data']['id']}", headers=analyst.headers)
    assert stored.json()["verdict"] == "malicious"


async def test_a_bad_indicator_is_refused_before_any_stream_starts(
    app: FastAPI, client: httpx.AsyncClient, owner: Member
) -> None:
    analyst = await ready_organisation(app, client, owner)
    answer = await client.post(
        "/v1/lookups",
        json={"indicator": "10.1.2.3"},
        headers={**analyst.headers, "accept": "text/event-stream"},
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
