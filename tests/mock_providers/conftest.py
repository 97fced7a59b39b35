"""The mock providers' app, spoken to through httpx's ASGI transport (no socket)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from assay.mock_providers.app import create_app
from assay.mock_providers.state import MockState

SLOW_SECONDS = 0.2


@pytest.fixture
def mock_app() -> Starlette:
    return create_app(slow_seconds=SLOW_SECONDS)


@pytest.fixture
def mock_state(mock_app: Starlette) -> MockState:
    state: MockState = mock_app.state.mock
    return state


@pytest.fixture
async def mock_client(mock_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=mock_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as client:
        yield client
