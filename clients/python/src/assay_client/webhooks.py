"""Verify Assay's webhooks (Standard Webhooks signatures) and read their events.

Needs the `webhooks` extra (``pip install 'assay-client[webhooks]'``), which brings the
`standardwebhooks` library; without it, `verify` raises `WebhooksExtraMissing`.

    from assay_client.webhooks import verify

    event = verify(request_body_bytes, request_headers, "whsec_...")
    if event.type == "job.succeeded":
        ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

INSTALL_HINT = "pip install 'assay-client[webhooks]'"


class WebhooksExtraMissing(ImportError):
    """The `standardwebhooks` library (the `webhooks` extra) is not installed."""


class InvalidWebhook(ValueError):
    """The webhook's signature, timestamp or headers do not verify; do not trust it."""


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook: its message id, event type, time and data.

    Assay's payloads are ``{"type", "timestamp", "data"}``; `payload` is the whole parsed
    body, whatever its shape.
    """

    id: str
    type: str | None
    timestamp: datetime | None
    data: Any
    payload: Any = field(repr=False)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str | bytes) -> WebhookEvent:
    """Verify a received webhook and return its event; raise `InvalidWebhook` if it fails.

    `payload` is the request body exactly as received (bytes, or its UTF-8 text);
    `headers` must hold `webhook-id`, `webhook-timestamp` and `webhook-signature` (any
    case); `secret` is the endpoint's `whsec_...` secret. A timestamp more than five
    minutes from now is refused, as the Standard Webhooks specification says.
    """
    try:
        # Imported here, not at the top: the library is an optional extra, and this
        # module must import without it to say so clearly.
        from standardwebhooks import Webhook, WebhookVerificationError  # noqa: PLC0415
    except ImportError as exc:
        msg = f"Webhook verification needs the 'webhooks' extra: {INSTALL_HINT}"
        raise WebhooksExtraMissing(msg) from exc
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        body = Webhook(secret).verify(payload, lowered)  # the parsed JSON, once verified
    except WebhookVerificationError as exc:
        raise InvalidWebhook(str(exc)) from None
    except ValueError:  # signed, but not JSON: not an Assay event
        raise InvalidWebhook("the payload is not JSON") from None
    if isinstance(body, dict):
        kind = body.get("type")
        return WebhookEvent(
            id=lowered["webhook-id"],
            type=kind if isinstance(kind, str) else None,
            timestamp=_timestamp(body.get("timestamp")),
            data=body.get("data"),
            payload=body,
        )
    return WebhookEvent(
        id=lowered["webhook-id"], type=None, timestamp=None, data=None, payload=body
    )
