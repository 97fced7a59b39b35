"""Watchlists: a watched indicator is looked up on its schedule, and a verdict that
changes is an event a subscribed webhook endpoint receives. The checker's passes run at
times the test chooses; nothing waits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from assay.core.db_types import utcnow
from assay.settings import Settings
from assay.watchlists.service import check_due_once
from assay.webhooks.dispatch import fan_out_once
from tests.conftest import KNOWN_SECRETS
from tests.lookups.conftest import Analyst, provider_settings
from tests.support.mock_providers import RunningMockProviders

# Weights that make the known-bad address "clean": AbuseIPDB and VirusTotal barely count.
LENIENT = """
schema:
  additional_fields: ignore
  fields:
    - {name: virustotal_score, type: number, required: false, minimum: 0, maximum: 100}
    - {name: abuseipdb_score, type: number, required: false, minimum: 0, maximum: 100}
    - {name: urlhaus_score, type: number, required: false, minimum: 0, maximum: 100}
spec:
  kind: rules
  rules:
    combine: {method: weighted_mean}
    rules:
      - {id: virustotal, value: virustotal_score / 100.0, weight: 0.1}
      - {id: abuseipdb, value: abuseipdb_score / 100.0, weight: 0.1}
      - {id: urlhaus, value: urlhaus_score / 100.0, weight: 0.8}
  bands:
    verdict:
      - {label: malicious, at_least: 0.7}
      - {label: suspicious, at_least: 0.35}
      - {label: clean}
"""


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, mock: RunningMockProviders
) -> Settings:
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}", **provider_settings(mock)
    )


async def test_a_changed_verdict_on_recheck_reaches_a_subscribed_webhook(
    app: FastAPI, client: httpx.AsyncClient, analyst: Analyst, mock: RunningMockProviders
) -> None:
    hook = await client.post(
        "/v1/webhooks",
        json={"url": "https://93.184.215.14/hook", "event_types": ["lookup.verdict_changed"]},
        headers=analyst.headers,
    )
    assert hook.status_code == 201, hook.text
    KNOWN_SECRETS.add(hook.json()["secret"])
    watched = await client.post(
        "/v1/watchlist",
        json={"indicator": "185.220.101[.]34", "interval_seconds": 3600, "note": "tor exit"},
        headers=analyst.headers,
    )
    assert watched.status_code == 201, watched.text
    entry = watched.json()
    assert entry["indicator"] == "185.220.101.34"
    again = await client.post(
        "/v1/watchlist", json={"indicator": "185.220.101.34"}, headers=analyst.headers
    )
    assert again.status_code == 409

    lookups, settings = app.state.lookups, app.state.settings
    start = utcnow()
    assert await check_due_once(lookups, settings, now=start) == 1
    first = (await client.get(f"/v1/watchlist/{entry['id']}", headers=analyst.headers)).json()
    assert first["last_verdict"] == "malicious"
    assert await check_due_once(lookups, settings, now=start + timedelta(seconds=60)) == 0
    mock.reset()

    # The organisation makes the verdict lenient; the next re-check finds it clean, asks
    # the providers afresh, and says so.
    created = await client.post(
        "/v1/models/threat-verdict/versions", data={"manifest": LENIENT}, headers=analyst.headers
    )
    assert created.status_code == 201, created.text
    moved = await client.put(
        "/v1/models/threat-verdict/aliases/production",
        json={"version": created.json()["version"]},
        headers=analyst.headers,
    )
    assert moved.status_code == 200, moved.text
    later = start + timedelta(seconds=3601)
    assert await check_due_once(lookups, settings, now=later) == 1
    assert len(mock.requests()) == 3  # past the result cache
    second = (await client.get(f"/v1/watchlist/{entry['id']}", headers=analyst.headers)).json()
    assert second["last_verdict"] == "clean"
    assert second["last_lookup_id"] != first["last_lookup_id"]

    await fan_out_once(app.state.database.sessionmaker, settings, now=later)
    deliveries = await client.get(
        f"/v1/webhooks/{hook.json()['id']}/deliveries", headers=analyst.headers
    )
    assert [d["event_type"] for d in deliveries.json()["items"]] == ["lookup.verdict_changed"]
    history = await client.get(
        "/v1/lookups", params={"indicator": "185.220.101.34"}, headers=analyst.headers
    )
    assert [item["verdict"] for item in history.json()["items"]] == ["clean", "malicious"]

    listed = await client.get("/v1/watchlist", headers=analyst.headers)
    assert [item["id"] for item in listed.json()["items"]] == [entry["id"]]
    removed = await client.delete(f"/v1/watchlist/{entry['id']}", headers=analyst.headers)
    assert removed.status_code == 204
    assert await check_due_once(lookups, settings, now=later + timedelta(days=1)) == 0
