"""Delivery end to end: a real receiver on loopback verifies every signature with the
standardwebhooks library; retries, Retry-After, 410, redirects and rebinding."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from standardwebhooks import Webhook, WebhookVerificationError

from assay.webhooks.signing import message_body, signed_headers
from tests.support.identity import events as security_events
from tests.support.outbound import Answer, LoopbackOnlyBackend, Receiver, StubResolver
from tests.webhooks.conftest import GRACE_SECONDS, Hooks

# The Standard Webhooks specification's published example.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specification_test_vector_signs_and_verifies() -> None:
    sent_at = datetime.fromtimestamp(SPEC_TIMESTAMP, UTC)
    headers = signed_headers([SPEC_SECRET], SPEC_ID, sent_at, SPEC_BODY)
    assert headers["webhook-signature"] == SPEC_SIGNATURE
    assert headers["webhook-timestamp"] == str(SPEC_TIMESTAMP)
    with time_machine.travel(sent_at + timedelta(seconds=10), tick=False):
        assert Webhook(SPEC_SECRET).verify(SPEC_BODY, headers) == {"test": 2432232314}
        with pytest.raises(WebhookVerificationError):
            Webhook(SPEC_SECRET).verify(SPEC_BODY + b" ", headers)


def test_the_body_is_type_timestamp_and_data() -> None:
    when = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    body = json.loads(message_body("job.succeeded", when, {"job_id": "j"}))
    assert body == {
        "type": "job.succeeded",
        "timestamp": "2026-12-07T14:00:00Z",
        "data": {"job_id": "j"},
    }


async def test_a_published_event_reaches_the_receiver_correctly_signed(
    hooks: Hooks, receiver: Receiver, network: LoopbackOnlyBackend
) -> None:
    created = await hooks.register(receiver.url(host="receiver.test"))
    event_id = await hooks.publish(job_id="j-42", rows=100)
    assert await hooks.dispatch() == 1
    [request] = receiver.requests
    payload = Webhook(created["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "job.succeeded"
    assert payload["data"] == {"job_id": "j-42", "rows": 100}
    assert request.headers["webhook-id"] == f"msg_{event_id.hex}"
    assert request.headers["host"] == f"receiver.test:{receiver.port}"
    assert network.attempts == [("127.0.0.1", receiver.port)]
    [delivery] = await hooks.deliveries(created["id"])
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == (
        "succeeded",
        1,
        200,
    )
    assert delivery["last_response_excerpt"] == "ok"
    assert delivery["last_latency_ms"] > 0
    # Nothing is due any more; the event is not fanned out twice.
    assert await hooks.dispatch(after_seconds=60) == 0
    assert len(receiver.requests) == 1


async def test_only_subscribed_enabled_endpoints_of_the_organisation_get_an_event(
    hooks: Hooks, receiver: Receiver
) -> None:
    await hooks.register(receiver.url("/jobs"))
    await hooks.register(receiver.url("/models"), event_types=["model.version_created"])
    await hooks.register(receiver.url("/off"), enabled=False)
    await hooks.publish()
    assert await hooks.dispatch() == 1
    assert [r.path for r in receiver.requests] == ["/jobs"]


async def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(
    hooks: Hooks, receiver: Receiver
) -> None:
    from prometheus_client import REGISTRY

    def counted(state: str) -> float:
        value = REGISTRY.get_sample_value("assay_webhook_attempts_total", {"state": state})
        return value or 0.0

    before = {state: counted(state) for state in ("failed", "succeeded")}
    receiver.answers = [Answer(500, body=b"boom"), Answer(500), Answer(200)]
    created = await hooks.register(receiver.url())
    await hooks.publish()
    assert await hooks.dispatch() == 1
    [delivery] = await hooks.deliveries(created["id"])
    assert (delivery["state"], delivery["last_status_code"]) == ("failed", 500)
    assert delivery["last_response_excerpt"] == "boom"
    # The first retry is due 1 s later (the compressed schedule), not before.
    assert await hooks.dispatch(after_seconds=0.5) == 0
    assert await hooks.dispatch(after_seconds=1) == 1
    assert await hooks.dispatch(after_seconds=2.9) == 0
    assert await hooks.dispatch(after_seconds=3) == 1
    [delivery] = await hooks.deliveries(created["id"])
    assert (delivery["state"], delivery["attempts"]) == ("succeeded", 3)
    assert len(receiver.requests) == 3
    assert counted("failed") - before["failed"] == 2
    assert counted("succeeded") - before["succeeded"] == 1
    detail = await hooks.client.get(
        f"/v1/webhooks/{created['id']}/deliveries/{delivery['id']}", headers=hooks.headers
    )
    log = detail.json()["attempts_log"]
    assert [(a["outcome"], a["status_code"]) for a in log] == [
        ("failed", 500),
        ("failed", 500),
        ("succeeded", 200),
    ]
    assert log[0]["response_excerpt"] == "boom"
    # Every attempt carries the same message id, signed anew each time.
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        Webhook(created["secret"]).verify(request.body, request.headers)
    # The success ended the endpoint's failure streak.
    shown = await hooks.client.get(f"/v1/webhooks/{created['id']}", headers=hooks.headers)
    assert shown.json()["failure_streak"] == 0


async def test_a_delivery_is_dead_after_the_last_retry(hooks: Hooks, receiver: Receiver) -> None:
    receiver.answers = [Answer(503)]
    created = await hooks.register(receiver.url())
    await hooks.publish()
    for after in (0, 1, 3, 7):
        assert await hooks.dispatch(after_seconds=after) == 1
    [delivery] = await hooks.deliveries(created["id"])
    assert (delivery["state"], delivery["attempts"], delivery["next_attempt_at"]) == (
        "dead",
        4,
        None,
    )
    assert await hooks.dispatch(after_seconds=3600) == 0


async def test_410_gone_disables_the_endpoint(hooks: Hooks, receiver: Receiver) -> None:
    receiver.answers = [Answer(410)]
    created = await hooks.register(receiver.url())
    await hooks.publish()
    assert await hooks.dispatch() == 1
    [delivery] = await hooks.deliveries(created["id"])
    assert delivery["state"] == "dead"
    shown = (await hooks.client.get(f"/v1/webhooks/{created['id']}", headers=hooks.headers)).json()
    assert shown["enabled"] is False
    assert "410" in shown["disabled_reason"]
    [event] = await security_events(hooks.app, "webhook.disabled", target_id=created["id"])
    assert event.actor_kind == "system"
    # A disabled endpoint gets no new deliveries.
    await hooks.publish()
    assert await hooks.dispatch(after_seconds=10) == 0
    assert len(receiver.requests) == 1


async def test_a_run_of_failures_disables_the_endpoint(hooks: Hooks, receiver: Receiver) -> None:
    receiver.answers = [Answer(500)]
    created = await hooks.register(receiver.url())
    for _ in range(5):
        await hooks.publish()
    assert await hooks.dispatch() == 5
    shown = (await hooks.client.get(f"/v1/webhooks/{created['id']}", headers=hooks.headers)).json()
    assert (shown["enabled"], shown["failure_streak"]) == (False, 5)
    assert shown["disabled_reason"] == "5 consecutive failed attempts"
    # Pending retries wait for the endpoint to be enabled again.
    assert await hooks.dispatch(after_seconds=10) == 0
    enabled = await hooks.client.patch(
        f"/v1/webhooks/{created['id']}", json={"enabled": True}, headers=hooks.headers
    )
    assert (enabled.json()["failure_streak"], enabled.json()["disabled_reason"]) == (0, None)
    receiver.answers = [Answer(200)]
    receiver.requests.clear()
    assert await hooks.dispatch(after_seconds=10) == 5


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_honoured(hooks: Hooks, receiver: Receiver, status: int) -> None:
    receiver.answers = [Answer(status, {"retry-after": "120"}), Answer(200)]
    created = await hooks.register(receiver.url())
    await hooks.publish()
    assert await hooks.dispatch() == 1
    [delivery] = await hooks.deliveries(created["id"])
    due = datetime.fromisoformat(delivery["next_attempt_at"])
    assert due == hooks.start + timedelta(seconds=120)
    assert await hooks.dispatch(after_seconds=5) == 0
    assert await hooks.dispatch(after_seconds=120) == 1
    [delivery] = await hooks.deliveries(created["id"])
    assert delivery["state"] == "succeeded"


async def test_a_redirect_is_a_failure_and_is_not_followed(
    hooks: Hooks, receiver: Receiver, network: LoopbackOnlyBackend
) -> None:
    receiver.answers = [Answer(307, {"location": "http://169.254.169.254/latest/meta-data"})]
    created = await hooks.register(receiver.url())
    await hooks.publish()
    assert await hooks.dispatch() == 1
    [delivery] = await hooks.deliveries(created["id"])
    assert (delivery["state"], delivery["last_status_code"]) == ("failed", 307)
    assert "redirect" in delivery["last_error"]
    assert len(receiver.requests) == 1
    assert network.refused == []


async def test_a_name_that_resolves_privately_at_delivery_time_is_refused_before_connecting(
    hooks: Hooks, receiver: Receiver, resolver: StubResolver, network: LoopbackOnlyBackend
) -> None:
    created = await hooks.register(receiver.url(host="receiver.test"))
    # DNS rebinding: the name was fine at registration, now it points inside.
    resolver.names["receiver.test"] = ["10.0.0.5"]
    await hooks.publish()
    assert await hooks.dispatch() == 1
    [delivery] = await hooks.deliveries(created["id"])
    assert delivery["state"] == "failed"
    assert delivery["last_error"].startswith("destination refused")
    assert delivery["last_status_code"] is None
    assert network.attempts == []
    assert receiver.requests == []


async def test_after_a_rotation_both_secrets_sign_until_the_grace_period_ends(
    hooks: Hooks, receiver: Receiver
) -> None:
    created = await hooks.register(receiver.url())
    old = created["secret"]
    rotated = await hooks.client.post(
        f"/v1/webhooks/{created['id']}/rotate-secret", headers=hooks.headers
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert rotated.json()["previous_secret_expires_at"] is not None

    await hooks.publish()
    assert await hooks.dispatch() == 1
    during = receiver.requests[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)

    await hooks.publish()
    assert await hooks.dispatch(after_seconds=GRACE_SECONDS + 10) == 1
    after = receiver.requests[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)
    [event] = await security_events(hooks.app, "webhook.secret_rotated", target_id=created["id"])
    assert "whsec_" not in json.dumps(event.details)


async def test_a_logged_delivery_can_be_sent_again(hooks: Hooks, receiver: Receiver) -> None:
    created = await hooks.register(receiver.url())
    await hooks.publish()
    await hooks.dispatch()
    [delivery] = await hooks.deliveries(created["id"])
    resent = await hooks.client.post(
        f"/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/resend", headers=hooks.headers
    )
    assert resent.status_code == 202, resent.text
    assert resent.json()["state"] == "pending"
    # Still under way: a second resend is a conflict.
    again = await hooks.client.post(
        f"/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/resend", headers=hooks.headers
    )
    assert again.status_code == 409
    # Due at the real time of the resend, which the dispatcher's clock is past.
    assert await hooks.dispatch(after_seconds=60) == 1
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    [delivery] = await hooks.deliveries(created["id"])
    assert (delivery["state"], delivery["attempts"]) == ("succeeded", 1)


async def test_a_test_message_goes_to_that_endpoint_alone(hooks: Hooks, receiver: Receiver) -> None:
    created = await hooks.register(receiver.url("/one"))
    await hooks.register(receiver.url("/two"), event_types=["job.succeeded", "job.failed"])
    sent = await hooks.client.post(f"/v1/webhooks/{created['id']}/test", headers=hooks.headers)
    assert sent.status_code == 202, sent.text
    assert sent.json()["event_type"] == "webhook.test"
    assert await hooks.dispatch() == 1
    [request] = receiver.requests
    assert request.path == "/one"
    payload = Webhook(created["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["webhook_id"] == created["id"]


async def test_two_dispatchers_at_once_send_each_delivery_once(
    hooks: Hooks, receiver: Receiver
) -> None:
    import asyncio

    from assay.webhooks.dispatch import deliver_due_once, fan_out_once

    await hooks.register(receiver.url())
    for _ in range(6):
        await hooks.publish()
    sessions = hooks.app.state.database.sessionmaker
    now = hooks.start
    runtime = hooks.runtime
    assert await fan_out_once(sessions, runtime.settings, now=now) == 6
    counts = await asyncio.gather(
        *(
            deliver_due_once(
                sessions, runtime.settings, runtime.outbound, runtime.keyring, now=now, owner=who
            )
            for who in ("a", "b")
        )
    )
    assert sum(counts) == 6
    assert len(receiver.requests) == 6
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 6
