"""The watchlist checker runs inside the application: an entry added through the API is
looked up by the app's own loop, and the loop stops with the app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from assay.settings import Settings
from tests.lookups.conftest import Analyst, provider_settings
from tests.support.mock_providers import RunningMockProviders

# Bounded polling: the entry's state is read at most this many times.
POLLS = 2000


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, mock: RunningMockProviders
) -> Settings:
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}",
        watchlist_checker_enabled=True,
        watchlist_poll_interval_seconds=0.02,
        **provider_settings(mock),
    )


async def test_the_apps_checker_looks_a_new_entry_up(
    client: httpx.AsyncClient, analyst: Analyst
) -> None:
    watched = await client.post(
        "/v1/watchlist", json={"indicator": "1.1.1.1"}, headers=analyst.headers
    )
    assert watched.status_code == 201, watched.text
    entry_id = watched.json()["id"]
    for _ in range(POLLS):
        entry = (await client.get(f"/v1/watchlist/{entry_id}", headers=analyst.headers)).json()
        if entry["last_verdict"] is not None:
            break
        await asyncio.sleep(0.01)  # polling the app's own loop, bounded above
    assert entry["last_verdict"] == "clean"
    assert entry["last_lookup_id"] is not None
