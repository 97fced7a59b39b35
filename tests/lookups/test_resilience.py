"""What a lookup does when providers are slow, failing or asking to slow down: a partial
verdict within the deadline, a breaker every process sees, a cool-down after a 429.
Dialect-independent, so on SQLite only; the breaker on the in-process cache and Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assay.app import create_app
from assay.outbound.service import OutboundClient, OutboundPolicy
from assay.providers.service import BUILTIN_NAMES, builtin_definition
from assay.settings import Settings
from tests.lookups.conftest import (
    Analyst,
    by_provider,
    look_up,
    provider_settings,
    ready_organisation,
)
from tests.support.identity import Member
from tests.support.mock_providers import RunningMockProviders
from tests.support.outbound import LoopbackOnlyBackend, StubResolver

SLOW_IP = "8.8.4.4"  # every provider answers after the mock's slow_seconds (0.2 s here)
FAILING_IP = "9.9.9.9"  # every provider answers 500
RATE_LIMITED_IP = "208.67.222.222"  # every provider answers 429, Retry-After: 30


@pytest.fixture(params=["memory", "redis"])
def settings(
    request: pytest.FixtureRequest,
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
    mock: RunningMockProviders,
) -> Settings:
    extra: dict[str, Any] = {"provider_breaker_failures": 2}
    if request.param == "redis":
        extra["redis_url"] = request.getfixturevalue("redis_url")
        # Each test its own key space, so breakers of earlier tests stay out of it.
        extra["rate_limit_namespace"] = f"assay-test-{tmp_path.name}"
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}", **provider_settings(mock, **extra)
    )


def _with_timeout(name: str, seconds: float) -> dict[str, Any]:
    return {**builtin_definition(name), "timeout_seconds": seconds, "retries": 0}


async def test_a_provider_past_its_timeout_leaves_a_partial_verdict(
    app: FastAPI, client: httpx.AsyncClient, owner: Member
) -> None:
    # VirusTotal gives up after 50 ms; the mock answers this address after 200 ms, so
    # VirusTotal times out and the other two answer.
    definitions = {name: builtin_definition(name) for name in BUILTIN_NAMES}
    definitions["virustotal"] = _with_timeout("virustotal", 0.05)
    analyst = await ready_organisation(app, client, owner, definitions=definitions)

    lookup = await look_up(client, analyst, SLOW_IP)

    results = by_provider(lookup)
    assert results["virustotal"]["status"] == "timeout"
    assert results["virustotal"]["weight"] == 0.5
    assert results["virustotal"]["effective_weight"] == 0
    assert results["abuseipdb"]["status"] == "ok"
    assert lookup["redistributed"] is True
    assert lookup["verdict"] == "clean"


async def test_failures_open_the_breaker_for_every_process_until_it_cools_down(
    app: FastAPI,
    client: httpx.AsyncClient,
    analyst: Analyst,
    settings: Settings,
    mock: RunningMockProviders,
) -> None:
    for _ in range(2):  # provider_breaker_failures
        lookup = await look_up(client, analyst, FAILING_IP)
        assert by_provider(lookup)["virustotal"]["status"] == "error"
    assert by_provider(lookup)["virustotal"]["detail"] == "the provider answered 500"
    mock.reset()

    # A second process with the same settings: with Redis it shares the breaker; in
    # process, this process's own app shows it.
    second = create_app(settings) if settings.redis_url else app
    outbound = OutboundClient(
        OutboundPolicy.from_settings(settings),
        resolver=StubResolver(),
        network_backend=LoopbackOnlyBackend(),
    )
    second.state.providers.caller.outbound = outbound
    async with _running(second, app) as other:
        lookup = await look_up(other, analyst, "1.1.1.1")
        statuses = {name: r["status"] for name, r in by_provider(lookup).items()}
        assert statuses == {
            "virustotal": "circuit_open",
            "abuseipdb": "circuit_open",
            "urlhaus": "circuit_open",
        }
        assert lookup["verdict"] == "unknown"
        assert mock.requests() == []  # nobody called a provider whose breaker is open
        listed = await other.get("/v1/providers", headers=analyst.headers)
        assert {p["name"]: p["breaker"]["state"] for p in listed.json()} == {
            "abuseipdb": "open",
            "urlhaus": "open",
            "virustotal": "open",
        }


async def test_a_429_starts_a_cool_down_instead_of_retrying_into_it(
    client: httpx.AsyncClient, analyst: Analyst, mock: RunningMockProviders
) -> None:
    lookup = await look_up(client, analyst, RATE_LIMITED_IP)
    assert {r["status"] for r in lookup["results"]} == {"rate_limited"}
    assert len(mock.requests()) == 3  # one call each, no retry into the 429
    mock.reset()

    later = await look_up(client, analyst, "1.1.1.1")
    assert {r["status"] for r in later["results"]} == {"rate_limited"}
    assert mock.requests() == []
    providers = await client.get("/v1/providers", headers=analyst.headers)
    assert all(p["breaker"]["cooldown_until"] is not None for p in providers.json())


async def test_a_providers_own_quota_is_kept(
    app: FastAPI, client: httpx.AsyncClient, owner: Member, mock: RunningMockProviders
) -> None:
    definitions = {"abuseipdb": {**builtin_definition("abuseipdb"), "rate_limit": "2/day"}}
    analyst = await ready_organisation(app, client, owner, definitions=definitions)
    for indicator in ("1.1.1.1", "8.8.8.8"):
        lookup = await look_up(client, analyst, indicator)
        assert by_provider(lookup)["abuseipdb"]["status"] == "ok"
    third = await look_up(client, analyst, "185.220.101.34")
    assert by_provider(third)["abuseipdb"]["status"] == "rate_limited"
    assert len(mock.requests()) == 2


@contextlib.asynccontextmanager
async def _running(app: FastAPI, already: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """`app` served (its lifespan run unless it is `already`), through a client."""
    async with contextlib.AsyncExitStack() as stack:
        if app is not already:
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        yield await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )
