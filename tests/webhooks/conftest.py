"""Webhook fixtures: an app whose outbound client resolves through a stub and dials
loopback only, a scripted receiver, and the dispatcher's steps run at a chosen time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assay.core.db_types import utcnow
from assay.events import service as events
from assay.outbound.service import OutboundClient, OutboundPolicy
from assay.settings import Settings
from assay.webhooks.dispatch import deliver_due_once, fan_out_once
from assay.webhooks.service import WebhookRuntime
from tests.conftest import KNOWN_SECRETS
from tests.support.identity import Member, bearer
from tests.support.outbound import LoopbackOnlyBackend, Receiver, StubResolver

# Compressed retry schedule: three retries, 1 s, 2 s and 4 s after each failure.
SCHEDULE = [1.0, 2.0, 4.0]
GRACE_SECONDS = 3600


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], database_url: str) -> Settings:
    return settings_factory(
        database_url=database_url,
        # The receivers live on loopback; only 127.0.0.1 is opened, nothing else.
        outbound_allowed_networks=["127.0.0.1/32"],
        webhook_retry_schedule_seconds=SCHEDULE,
        webhook_disable_after_failures=5,
        webhook_secret_grace_seconds=GRACE_SECONDS,
        outbound_timeout_seconds=5.0,
    )


@pytest.fixture
def resolver() -> StubResolver:
    return StubResolver()


@pytest.fixture
def network() -> LoopbackOnlyBackend:
    return LoopbackOnlyBackend()


@pytest.fixture
def runtime(app: FastAPI, resolver: StubResolver, network: LoopbackOnlyBackend) -> WebhookRuntime:
    """The app's webhook runtime, its outbound client swapped for the test network's."""
    webhooks: WebhookRuntime = app.state.webhooks
    webhooks.outbound = OutboundClient(
        OutboundPolicy.from_settings(webhooks.settings), resolver=resolver, network_backend=network
    )
    return webhooks


@pytest.fixture
async def receiver(free_port: int) -> AsyncIterator[Receiver]:
    server = await Receiver().start(free_port)
    yield server
    await server.stop()


@dataclass
class Hooks:
    """Drives webhooks the way a user and the dispatcher do."""

    app: FastAPI
    client: httpx.AsyncClient
    token: str
    org_id: uuid.UUID
    runtime: WebhookRuntime
    start: datetime

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    async def register(self, url: str, **body: Any) -> dict[str, Any]:
        answer = await self.client.post(
            "/v1/webhooks",
            json={"url": url, "event_types": ["job.succeeded"], **body},
            headers=self.headers,
        )
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        KNOWN_SECRETS.add(created["secret"])
        return created

    async def publish(self, type: str = "job.succeeded", **data: Any) -> uuid.UUID:
        async with self.app.state.database.sessionmaker() as db:
            event_id = await events.publish(
                db, org_id=self.org_id, type=type, data=data or {"job_id": "j-1", "rows": 3}
            )
            await db.commit()
        return event_id

    async def dispatch(self, after_seconds: float = 0.0) -> int:
        """One fan-out and one delivery pass, as if `after_seconds` had passed."""
        now = self.start + timedelta(seconds=after_seconds)
        sessions = self.app.state.database.sessionmaker
        settings = self.runtime.settings
        await fan_out_once(sessions, settings, now=now)
        return await deliver_due_once(
            sessions, settings, self.runtime.outbound, self.runtime.keyring, now=now
        )

    async def deliveries(self, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
        answer = await self.client.get(
            f"/v1/webhooks/{webhook_id}/deliveries", params=params, headers=self.headers
        )
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items


@pytest.fixture
async def hooks(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: Member,
    owner_token: str,
    runtime: WebhookRuntime,
) -> Hooks:
    assert owner.org_id is not None
    # A second later than anything created so far, so every test event is "after".
    return Hooks(app, client, owner_token, owner.org_id, runtime, utcnow() + timedelta(seconds=1))
