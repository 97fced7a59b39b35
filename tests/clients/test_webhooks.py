"""`assay_client.webhooks.verify`: the Standard Webhooks published test vector, Assay's
event shape, refusals, and a clear error without the `webhooks` extra."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks.webhooks
from assay_client.webhooks import InvalidWebhook, WebhooksExtraMissing, verify
from standardwebhooks import Webhook

# The specification's published test vector (also in the standardwebhooks libraries' tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_PAYLOAD = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


class _VectorTime(datetime):
    """The library's clock, set to the vector's time (its timestamp is from 2021)."""

    @classmethod
    def now(cls, tz: object = None) -> _VectorTime:  # type: ignore[override]
        return cls.fromtimestamp(VECTOR_TIMESTAMP + 10, tz=UTC)


def _vector_headers(**changes: str) -> dict[str, str]:
    headers = {
        "Webhook-Id": VECTOR_ID,
        "Webhook-Timestamp": str(VECTOR_TIMESTAMP),
        "Webhook-Signature": VECTOR_SIGNATURE,
    }
    headers.update(changes)
    return headers


def test_the_published_test_vector_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", _VectorTime)

    event = verify(VECTOR_PAYLOAD.encode(), _vector_headers(), VECTOR_SECRET)

    assert event.id == VECTOR_ID
    assert event.payload == {"test": 2432232314}
    assert event.type is None


def test_the_vector_is_refused_when_anything_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", _VectorTime)
    with pytest.raises(InvalidWebhook, match="signature"):
        verify('{"test": 2432232315}', _vector_headers(), VECTOR_SECRET)
    with pytest.raises(InvalidWebhook):
        verify(VECTOR_PAYLOAD, _vector_headers(**{"Webhook-Id": "msg_other"}), VECTOR_SECRET)
    with pytest.raises(InvalidWebhook):
        verify(VECTOR_PAYLOAD, _vector_headers(), "whsec_" + "A" * 32)
    headers = _vector_headers()
    del headers["Webhook-Signature"]
    with pytest.raises(InvalidWebhook, match="Missing"):
        verify(VECTOR_PAYLOAD, headers, VECTOR_SECRET)


def test_an_old_timestamp_is_refused() -> None:
    with pytest.raises(InvalidWebhook, match="too old"):
        verify(VECTOR_PAYLOAD, _vector_headers(), VECTOR_SECRET)


def test_an_assay_event_is_read_with_its_type_time_and_data() -> None:
    secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
    sent_at = datetime.now(UTC)
    body = json.dumps(
        {
            "type": "job.succeeded",
            "timestamp": sent_at.isoformat().replace("+00:00", "Z"),
            "data": {"job_id": "j-1", "state": "succeeded"},
        }
    )
    signature = Webhook(secret).sign("msg_1", sent_at, body)
    rotated = Webhook("whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==").sign(
        "msg_1", sent_at, body
    )
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(sent_at.timestamp())),
        # During a secret rotation two signatures are sent; either one verifies.
        "webhook-signature": f"{rotated} {signature}",
    }

    event = verify(body, headers, secret)

    assert event.type == "job.succeeded"
    assert event.data == {"job_id": "j-1", "state": "succeeded"}
    assert event.timestamp is not None
    assert abs(event.timestamp - sent_at) < timedelta(seconds=1)


def test_a_signed_body_that_is_not_json_is_refused() -> None:
    secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
    sent_at = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_2", sent_at, b"not json"),
    }
    with pytest.raises(InvalidWebhook, match="not JSON"):
        verify(b"not json", headers, secret)


def test_without_the_extra_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "standardwebhooks", None)
    with pytest.raises(WebhooksExtraMissing, match=r"assay-client\[webhooks\]"):
        verify(VECTOR_PAYLOAD, _vector_headers(), VECTOR_SECRET)
