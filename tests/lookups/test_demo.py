"""The demo's threat intelligence: `assay demo` registers the pack and the three providers
with the mock's key, and `assay serve --demo`'s background mock answers them, so a
newcomer's first lookup works offline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from assay.app import create_app
from assay.demo import create_demo
from assay.engine.pack import Pack
from assay.mock_providers.background import serve_in_background
from assay.outbound.service import OutboundClient, OutboundPolicy
from assay.settings import Settings
from tests.conftest import KNOWN_SECRETS
from tests.support.outbound import LoopbackOnlyBackend, StubResolver


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(database_url=f"sqlite:///{tmp_path / 'assay.db'}")


async def test_a_demo_lookup_is_answered_by_the_background_mock(
    settings: Settings, trained_pack: Pack
) -> None:
    credentials = await create_demo(settings, trained_pack.directory)
    KNOWN_SECRETS.add(credentials.api_key)
    mock = serve_in_background()
    try:
        served = settings.model_copy(
            update={
                "provider_base_urls": mock.base_urls,
                "outbound_allowed_networks": ["127.0.0.1/32"],
            }
        )
        app = create_app(served)
        app.state.providers.caller.outbound = OutboundClient(
            OutboundPolicy.from_settings(served),
            resolver=StubResolver(),
            network_backend=LoopbackOnlyBackend(),
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                answer = await client.post(
                    "/v1/lookups",
                    json={"indicator": "185.220.101[.]34"},
                    headers={"x-api-key": credentials.api_key},
                )
    finally:
        mock.stop()
    assert answer.status_code == 200, answer.text
    lookup = answer.json()
    assert lookup["verdict"] == "malicious"
    assert {r["status"] for r in lookup["results"]} == {"ok"}

    # Running the demo again keeps what it registered (and any key changed since).
    again = await create_demo(settings, trained_pack.directory)
    assert again.password is None
    KNOWN_SECRETS.add(again.api_key)
