"""Secrets at rest and what the delivery log keeps of an answer."""

from __future__ import annotations

import base64
import uuid

import pytest

from assay.core.crypto import DecryptionError, Keyring
from assay.settings import Settings
from assay.webhooks.service import WebhookRuntime
from assay.webhooks.signing import new_secret, response_excerpt, seal_secret, unseal_secret
from tests.conftest import new_secret as known_random_secret


def test_secrets_are_whsec_with_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret


def test_a_sealed_secret_opens_only_where_it_was_sealed() -> None:
    keyring = Keyring.from_secret(known_random_secret())
    org, endpoint, row = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    secret = new_secret()
    sealed = seal_secret(keyring, secret, org_id=org, endpoint_id=endpoint, secret_id=row)
    assert secret.encode() not in sealed
    assert unseal_secret(keyring, sealed, org_id=org, endpoint_id=endpoint, secret_id=row) == secret
    with pytest.raises(DecryptionError):  # moved to another endpoint
        unseal_secret(keyring, sealed, org_id=org, endpoint_id=uuid.uuid4(), secret_id=row)
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionError):
        unseal_secret(keyring, bytes(flipped), org_id=org, endpoint_id=endpoint, secret_id=row)


def test_the_log_keeps_a_bounded_excerpt_without_control_characters() -> None:
    answer = b"ok\x1b[31m red\r\nforged log line\x00" + b"x" * 5000
    excerpt = response_excerpt(answer, 40)
    assert excerpt.startswith("ok\ufffd[31m red\ufffd\nforged log line\ufffd")
    assert len(excerpt) == 40
    assert response_excerpt(b"\xff\xfe bad utf-8", 100) == "\ufffd\ufffd bad utf-8"


def test_a_worker_builds_the_runtime_from_settings_alone() -> None:
    settings = Settings(_env_file=None, encryption_key=known_random_secret())  # type: ignore[call-arg]
    runtime = WebhookRuntime.from_settings(settings)
    assert runtime.outbound.policy.allow_http is True  # development
    with pytest.raises(ValueError, match="encryption key"):
        WebhookRuntime.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
