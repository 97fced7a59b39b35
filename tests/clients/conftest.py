"""Client fixtures: one live Assay per database kind (SQLite, PostgreSQL) for the module,
and a fresh organisation (owner, keys, the rules model) for each test."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from assay.app import create_app
from assay.settings import Settings
from tests.clients.live import LiveServer, ScoringGate, Tenant, gate, new_tenant
from tests.conftest import make_database_url, new_secret

LIVE_SETTINGS: dict[str, Any] = {
    "env": "test",
    "host": "127.0.0.1",
    "metrics_port": 0,
    "argon2_memory_kib": 1024,
    "argon2_time_cost": 1,
    "rate_limit_auth_per_address": "100000/minute",
    "rate_limit_auth_per_account": "100000/minute",
    "rate_limit_management": "1000000/minute",
    # Small chunks and checkpoints: a 200-row job makes many progress events.
    "jobs_chunk_rows": 4,
    "jobs_checkpoint_rows": 2,
    "jobs_retry_base_seconds": 0,
    "jobs_retry_max_seconds": 0,
    "jobs_events_poll_seconds": 0.02,
    "jobs_max_concurrent_per_org": 50,
    "prediction_records_sync": True,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A live Assay on 127.0.0.1 (a free port) over a fresh database of the module."""
    directory = tmp_path_factory.mktemp(f"live-{request.param}")
    url, drop = asyncio.run(make_database_url(request.param, directory))
    settings = Settings(
        **LIVE_SETTINGS,
        port=_free_port(),
        data_dir=directory / "data",
        database_url=url,
        token_signing_key=new_secret(),
        session_secret=new_secret(),
        encryption_key=new_secret(),
    )
    server = LiveServer(create_app(settings), settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if drop is not None:
            asyncio.run(drop())


@pytest.fixture
def tenant(live: LiveServer) -> Tenant:
    return live.run(new_tenant(live))


@pytest.fixture
def scoring_gate(live: LiveServer) -> Iterator[ScoringGate]:
    """Scoring held after the first call until the test opens the gate."""
    yield from gate(live, free=1)
