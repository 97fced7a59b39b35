"""The chainer runs inside every process: events written through the API are sealed by
the app's own loop, without anyone asking, and the loop stops with the app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from assay.settings import Settings
from tests.support.identity import MakeMember, bearer, login

from .conftest import chain_rows

# Bounded polling: the chain is read at most this many times.
POLLS = 2000


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}",
        audit_chainer_enabled=True,
        audit_chain_interval_seconds=0.02,
    )


async def test_the_apps_chainer_seals_new_events(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    member = await make_member()
    token = (await login(client, member))["access_token"]
    renamed = await client.patch(
        "/v1/org", json={"name": "Renamed by the test"}, headers=bearer(token)
    )
    assert renamed.status_code == 200, renamed.text
    for _ in range(POLLS):
        rows = await chain_rows(app, member.org_id)
        if (
            rows
            and all(row.seq is not None for row in rows)
            and any(row.action == "org.updated" for row in rows)
        ):
            break
        await asyncio.sleep(0.01)  # polling the app's own loop, bounded above
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert any(row.action == "org.updated" for row in rows)
