"""The dispatcher: leases survive a crashed sender, and the app's loop delivers on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlalchemy import update

from assay.app import create_app
from assay.core.tenancy import across_tenants
from assay.events import service as events
from assay.outbound.service import OutboundClient, OutboundPolicy
from assay.settings import Settings
from assay.webhooks.dispatch import fan_out_once
from assay.webhooks.models import DeliveryState, WebhookDelivery
from assay.webhooks.service import WebhookRuntime
from tests.conftest import KNOWN_SECRETS
from tests.support.identity import bearer, login, new_member
from tests.support.outbound import LoopbackOnlyBackend, Receiver, StubResolver
from tests.webhooks.conftest import Hooks


async def test_a_delivery_leased_by_a_crashed_dispatcher_is_taken_over_when_the_lease_ends(
    hooks: Hooks, receiver: Receiver
) -> None:
    created = await hooks.register(receiver.url())
    await hooks.publish()
    sessions = hooks.app.state.database.sessionmaker
    assert await fan_out_once(sessions, hooks.runtime.settings, now=hooks.start) == 1
    async with sessions() as db:
        # As a dispatcher leaves it when its process dies mid-send.
        await db.execute(
            across_tenants(
                update(WebhookDelivery).values(
                    state=DeliveryState.DELIVERING,
                    lease_owner="crashed",
                    lease_expires_at=hooks.start + timedelta(seconds=60),
                ),
                "test: simulate a crashed dispatcher",
            )
        )
        await db.commit()
    assert await hooks.dispatch(after_seconds=30) == 0
    assert await hooks.dispatch(after_seconds=60) == 1
    [delivery] = await hooks.deliveries(created["id"])
    assert (delivery["state"], delivery["attempts"]) == ("succeeded", 1)
    assert len(receiver.requests) == 1


async def test_the_app_runs_the_dispatcher_woken_by_a_published_event(
    settings_factory: Callable[..., Settings], database_url: str, free_port: int
) -> None:
    settings = settings_factory(
        database_url=database_url,
        outbound_allowed_networks=["127.0.0.1/32"],
        webhook_dispatcher_enabled=True,
        # Only the wake-up can explain a prompt delivery.
        webhook_poll_interval_seconds=3600,
    )
    app = create_app(settings)
    runtime: WebhookRuntime = app.state.webhooks
    network = LoopbackOnlyBackend()
    runtime.outbound = OutboundClient(
        OutboundPolicy.from_settings(settings), resolver=StubResolver(), network_backend=network
    )
    receiver = await Receiver().start(free_port)
    try:
        async with app.router.lifespan_context(app):
            member = await new_member(app)
            assert member.org_id is not None
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                token = (await login(client, member))["access_token"]
                created = await client.post(
                    "/v1/webhooks",
                    json={"url": receiver.url(host="receiver.test"), "event_types": ["job.failed"]},
                    headers=bearer(token),
                )
                assert created.status_code == 201, created.text
                KNOWN_SECRETS.add(created.json()["secret"])
            async with app.state.database.sessionmaker() as db:
                await events.publish(
                    db, org_id=member.org_id, type="job.failed", data={"job_id": "x"}
                )
                await db.commit()
            await asyncio.wait_for(receiver.arrived.wait(), timeout=15)
        # The lifespan ended, so the loop stopped cleanly after its step.
        [request] = receiver.requests
        assert request.headers["host"] == f"receiver.test:{receiver.port}"
        assert network.refused == []
    finally:
        await receiver.stop()


def test_a_lease_must_outlast_one_outbound_request() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="webhook_lease_seconds"):
        Settings(_env_file=None, webhook_lease_seconds=10, outbound_timeout_seconds=15)  # type: ignore[call-arg]
