"""Python plugins: an installed entry point named by a provider document is called with
the indicator, the organisation's key and the guarded HTTP helper, under the same
deadline, breaker, cache and sealing as any provider."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.providers import plugins
from assay.settings import Settings
from tests.lookups.conftest import CREDENTIALS, Analyst, by_provider, look_up, provider_settings
from tests.support.mock_providers import RunningMockProviders

INSTALLED = [
    EntryPoint("by-hand", "tests.providers.example_plugins:AbuseByHand", plugins.ENTRY_POINT_GROUP),
    EntryPoint("broken", "tests.providers.example_plugins:AlwaysBroken", plugins.ENTRY_POINT_GROUP),
]


@pytest.fixture(autouse=True)
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two plugins installed, as a package's entry points would make them."""

    def entry_points(*, group: str) -> list[EntryPoint]:
        return [ep for ep in INSTALLED if ep.group == group]

    monkeypatch.setattr(plugins, "entry_points", entry_points)


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, mock: RunningMockProviders
) -> Settings:
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}", **provider_settings(mock)
    )


def _plugged(name: str, plugin: str, base_url: str) -> dict[str, Any]:
    return {
        "format": "assay-provider/v1",
        "name": name,
        "title": f"{plugin} as a plugin",
        "base_url": base_url,
        "credential": {"in": "header", "name": "Key"},
        "plugin": plugin,
        "retries": 0,
    }


async def test_a_plugin_provider_answers_like_any_other(
    client: httpx.AsyncClient, analyst: Analyst, mock: RunningMockProviders
) -> None:
    saved = await client.put(
        "/v1/providers/by-hand",
        json={"definition": _plugged("by-hand", "by-hand", mock.abuseipdb_url)},
        headers=analyst.headers,
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["supports"] == ["ipv4"]
    keyed = await client.put(
        "/v1/providers/by-hand/credential",
        json={"credential": CREDENTIALS["abuseipdb"]},
        headers=analyst.headers,
    )
    assert keyed.status_code == 204
    mock.reset()

    lookup = await look_up(client, analyst, "185.220.101.34", providers=["by-hand"])
    result = by_provider(lookup)["by-hand"]
    assert (result["status"], result["score"], result["level"]) == ("ok", 100.0, "malicious")
    assert result["evidence"] == "1,204 reports, by hand"
    assert [entry["credential_present"] for entry in mock.requests()] == [True]
    # The verdict model has no rule for it yet: no verdict, and no error either.
    assert lookup["verdict"] == "unknown"

    again = await look_up(client, analyst, "185.220.101.34", providers=["by-hand"])
    assert by_provider(again)["by-hand"]["cached"] is True
    unsupported = await look_up(client, analyst, "example.com", providers=["by-hand"])
    assert by_provider(unsupported)["by-hand"]["status"] == "unsupported"

    health = await client.post("/v1/providers/by-hand/health-check", headers=analyst.headers)
    assert health.json() == {"healthy": True, "detail": "healthy"}
    declared = await client.post("/v1/providers/abuseipdb/health-check", headers=analyst.headers)
    assert declared.json()["healthy"] is True


async def test_a_failing_plugin_is_an_error_result_and_a_missing_one_is_refused(
    client: httpx.AsyncClient, analyst: Analyst, mock: RunningMockProviders
) -> None:
    saved = await client.put(
        "/v1/providers/broken",
        json={"definition": _plugged("broken", "broken", mock.abuseipdb_url)},
        headers=analyst.headers,
    )
    assert saved.status_code == 200, saved.text
    await client.put(
        "/v1/providers/broken/credential", json={"credential": "k" * 12}, headers=analyst.headers
    )
    lookup = await look_up(client, analyst, "185.220.101.34")
    broken = by_provider(lookup)["broken"]
    assert (broken["status"], broken["detail"]) == ("error", "the plugin failed: RuntimeError")
    assert lookup["verdict"] == "malicious"  # the others still decide
    health = await client.post("/v1/providers/broken/health-check", headers=analyst.headers)
    assert health.json() == {
        "healthy": False,
        "detail": "the plugin's check failed: RuntimeError",
    }

    missing = await client.put(
        "/v1/providers/ghost",
        json={"definition": _plugged("ghost", "not-installed", mock.abuseipdb_url)},
        headers=analyst.headers,
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["code"] == "plugin_unavailable"
    both = {**_plugged("both", "by-hand", mock.abuseipdb_url), "requests": [{"types": ["ipv4"]}]}
    refused = await client.put(
        "/v1/providers/both", json={"definition": both}, headers=analyst.headers
    )
    assert refused.status_code == 422
