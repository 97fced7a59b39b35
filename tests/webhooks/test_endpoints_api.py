"""/v1/webhooks: registering, changing, deleting, listing; who may; what is refused."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from assay.settings import Settings
from tests.support.identity import MakeMember, bearer, login
from tests.support.identity import events as security_events
from tests.support.outbound import LoopbackOnlyBackend, Receiver
from tests.webhooks.conftest import Hooks


async def test_an_endpoint_is_registered_listed_changed_and_deleted_with_security_events(
    hooks: Hooks, receiver: Receiver
) -> None:
    created = await hooks.register(
        receiver.url(), description="jobs", event_types=["job.failed", "job.succeeded"]
    )
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["job.failed", "job.succeeded"]
    assert (created["enabled"], created["failure_streak"], created["disabled_reason"]) == (
        True,
        0,
        None,
    )
    listed = await hooks.client.get("/v1/webhooks", headers=hooks.headers)
    assert [w["id"] for w in listed.json()] == [created["id"]]
    # The secret is shown once: never in a listing or a read.
    assert "secret" not in listed.json()[0]
    path = f"/v1/webhooks/{created['id']}"
    assert "secret" not in (await hooks.client.get(path, headers=hooks.headers)).json()

    changed = await hooks.client.patch(
        path,
        json={"event_types": ["model.alias_moved"], "enabled": False, "description": "models"},
        headers=hooks.headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["event_types"], body["enabled"], body["description"]) == (
        ["model.alias_moved"],
        False,
        "models",
    )
    assert body["disabled_reason"] == "disabled by a user"

    assert (await hooks.client.delete(path, headers=hooks.headers)).status_code == 204
    assert (await hooks.client.get(path, headers=hooks.headers)).status_code == 404
    for action in ("webhook.created", "webhook.updated", "webhook.deleted"):
        [event] = await security_events(hooks.app, action, target_id=created["id"])
        assert event.org_id == hooks.org_id
        assert "whsec_" not in str(event.details)


async def test_the_event_types_are_the_catalogue_without_the_test_message(hooks: Hooks) -> None:
    answer = await hooks.client.get("/v1/webhooks/event-types", headers=hooks.headers)
    names = [t["name"] for t in answer.json()]
    for name in (
        "job.succeeded",
        "job.failed",
        "job.cancelled",
        "model.version_created",
        "model.alias_moved",
        "model.unhealthy",
    ):
        assert name in names
    assert "webhook.test" not in names
    assert all(t["description"] for t in answer.json())


async def test_unknown_event_types_are_a_validation_problem_naming_each(
    hooks: Hooks, receiver: Receiver
) -> None:
    answer = await hooks.client.post(
        "/v1/webhooks",
        json={
            "url": receiver.url(),
            "event_types": ["job.succeeded", "job.exploded", "webhook.test"],
        },
        headers=hooks.headers,
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"] == "urn:assay:problem:validation-failed"
    assert [e["field"] for e in problem["errors"]] == ["event_types.1", "event_types.2"]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://internal.test/hook", "address_refused"),
        ("https://metadata.test/latest/meta-data", "address_refused"),
        ("https://169.254.169.254/latest", "address_refused"),
        ("https://[::1]/hook", "address_refused"),
        ("https://unknown.test/hook", "name_unresolved"),
        ("https://user:pass@receiver.test/hook", "url_invalid"),
        ("ftp://receiver.test/hook", "url_invalid"),
    ],
)
async def test_a_url_that_may_not_be_called_is_refused_at_registration_before_any_connection(
    hooks: Hooks, network: LoopbackOnlyBackend, url: str, code: str
) -> None:
    answer = await hooks.client.post(
        "/v1/webhooks", json={"url": url, "event_types": ["job.succeeded"]}, headers=hooks.headers
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["type"] == "urn:assay:problem:webhook-destination-refused"
    assert problem["errors"][0]["field"] == "url"
    assert problem["errors"][0]["code"] == code
    # The client learns the kind of address, not the address itself.
    assert "10.0.0.5" not in answer.text
    assert network.attempts == []


async def test_a_change_of_url_is_checked_like_a_new_one(hooks: Hooks, receiver: Receiver) -> None:
    created = await hooks.register(receiver.url())
    answer = await hooks.client.patch(
        f"/v1/webhooks/{created['id']}",
        json={"url": "https://metadata.test/latest"},
        headers=hooks.headers,
    )
    assert answer.status_code == 422
    shown = await hooks.client.get(f"/v1/webhooks/{created['id']}", headers=hooks.headers)
    assert shown.json()["url"] == receiver.url()


async def test_production_accepts_only_https(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    from assay.outbound.errors import DestinationRefused
    from assay.outbound.service import OutboundPolicy, parse_destination_url
    from assay.settings import Environment

    production = settings_factory(database_url=database_url)
    policy = OutboundPolicy.from_settings(
        production.model_copy(update={"env": Environment.PRODUCTION})
    )
    assert policy.allow_http is False
    with pytest.raises(DestinationRefused) as refused:
        parse_destination_url("http://hooks.example.org/", allow_http=policy.allow_http)
    assert refused.value.reason == "not_https"
    assert OutboundPolicy.from_settings(production).allow_http is True  # env=test


async def test_reading_needs_webhooks_read_and_changing_needs_webhooks_manage(
    hooks: Hooks,
    client: httpx.AsyncClient,
    make_member: MakeMember,
    receiver: Receiver,
    app: FastAPI,
) -> None:
    created = await hooks.register(receiver.url())
    owner_org_slug = None
    del owner_org_slug
    from sqlalchemy import select

    from assay.orgs.models import Organisation

    async with app.state.database.sessionmaker() as db:
        slug = (
            await db.execute(select(Organisation.slug).where(Organisation.id == hooks.org_id))
        ).scalar_one()
    viewer = await make_member(role="viewer", org_slug=slug)
    maintainer = await make_member(role="maintainer", org_slug=slug)
    viewer_token = (await login(client, viewer))["access_token"]
    maintainer_token = (await login(client, maintainer))["access_token"]
    assert (await client.get("/v1/webhooks", headers=bearer(viewer_token))).status_code == 403
    assert (await client.get("/v1/webhooks", headers=bearer(maintainer_token))).status_code == 200
    deliveries = f"/v1/webhooks/{created['id']}/deliveries"
    assert (await client.get(deliveries, headers=bearer(maintainer_token))).status_code == 200
    for method, path in (
        ("POST", "/v1/webhooks"),
        ("PATCH", f"/v1/webhooks/{created['id']}"),
        ("DELETE", f"/v1/webhooks/{created['id']}"),
        ("POST", f"/v1/webhooks/{created['id']}/rotate-secret"),
        ("POST", f"/v1/webhooks/{created['id']}/test"),
    ):
        answer = await client.request(method, path, headers=bearer(maintainer_token), json={})
        assert answer.status_code == 403, (method, path)


async def test_another_organisation_gets_404_on_every_webhook_route(
    hooks: Hooks, client: httpx.AsyncClient, make_member: MakeMember, receiver: Receiver
) -> None:
    created = await hooks.register(receiver.url())
    sent = await hooks.client.post(f"/v1/webhooks/{created['id']}/test", headers=hooks.headers)
    delivery_id = sent.json()["id"]
    await hooks.dispatch()
    other = await make_member(role="owner")
    token = bearer((await login(client, other))["access_token"])
    base = f"/v1/webhooks/{created['id']}"
    for method, path, body in (
        ("GET", base, None),
        ("PATCH", base, {"description": "mine now"}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("POST", f"{base}/test", None),
        ("GET", f"{base}/deliveries", None),
        ("GET", f"{base}/deliveries/{delivery_id}", None),
        ("POST", f"{base}/deliveries/{delivery_id}/resend", None),
    ):
        answer = await client.request(method, path, headers=token, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    assert (await client.get("/v1/webhooks", headers=token)).json() == []
    # And organisation A's endpoint is untouched.
    shown = await hooks.client.get(base, headers=hooks.headers)
    assert shown.json()["description"] == ""
    # Its own endpoint cannot resend A's delivery either.
    mine = await client.post(
        "/v1/webhooks",
        json={"url": receiver.url(), "event_types": ["job.succeeded"]},
        headers=token,
    )
    resend = await client.post(
        f"/v1/webhooks/{mine.json()['id']}/deliveries/{delivery_id}/resend", headers=token
    )
    assert resend.status_code == 404


async def test_the_delivery_log_pages_newest_first_and_filters_by_state(
    hooks: Hooks, receiver: Receiver
) -> None:
    created = await hooks.register(receiver.url())
    for _ in range(3):
        await hooks.publish()
    await hooks.dispatch()
    first = await hooks.client.get(
        f"/v1/webhooks/{created['id']}/deliveries", params={"limit": 2}, headers=hooks.headers
    )
    page = first.json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = await hooks.deliveries(created["id"], limit=2, cursor=page["next_cursor"])
    ids = [d["id"] for d in page["items"]] + [d["id"] for d in rest]
    assert len(set(ids)) == 3
    assert await hooks.deliveries(created["id"], state="failed") == []
    assert len(await hooks.deliveries(created["id"], state="succeeded")) == 3
    bad = await hooks.client.get(
        f"/v1/webhooks/{created['id']}/deliveries", params={"cursor": "nope"}, headers=hooks.headers
    )
    assert bad.status_code == 422
