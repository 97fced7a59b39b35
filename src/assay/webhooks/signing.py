"""Standard Webhooks messages: secrets (`whsec_…`), sealed at rest; ids, bodies, headers."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from assay import __version__
from assay.core.crypto import Keyring
from assay.webhooks.models import webhook_secret_aad

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret  # nosec B105
# The specification asks for 24 to 64 random bytes.
_SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


_aad = webhook_secret_aad  # the recipe lives with the table (assay.core.sealed)


def seal_secret(
    keyring: Keyring,
    secret: str,
    *,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    secret_id: uuid.UUID,
) -> bytes:
    return keyring.encrypt(secret.encode(), _aad(org_id, endpoint_id, secret_id))


def unseal_secret(
    keyring: Keyring,
    sealed: bytes,
    *,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    secret_id: uuid.UUID,
) -> str:
    return keyring.decrypt(sealed, _aad(org_id, endpoint_id, secret_id)).decode()


def message_id(event_id: uuid.UUID) -> str:
    """The `webhook-id`: the event's, so a receiver can drop a retried duplicate."""
    return f"msg_{event_id.hex}"


def message_body(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> bytes:
    """`{type, timestamp, data}` as the specification shapes it, compact UTF-8 JSON."""
    payload = {
        "type": event_type,
        "timestamp": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(
    secrets_in_use: Sequence[str], msg_id: str, sent_at: datetime, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers; one signature per secret still in use."""
    signatures = " ".join(Webhook(s).sign(msg_id, sent_at, body) for s in secrets_in_use)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": f"Assay-Webhooks/{__version__}",
    }


def response_excerpt(body: bytes, limit: int) -> str:
    """A receiver's answer as the delivery log shows it: bounded, control characters out."""
    text = body[:limit].decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in text)
