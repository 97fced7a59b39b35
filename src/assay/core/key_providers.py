"""Key-encryption keys: what wraps the data keys stored in the database (envelope
encryption, ADR 0024).

A `KeyProvider` wraps and unwraps data keys. The local provider, the default, derives
its key-encryption key from the configured encryption secret (the environment, or the
secrets file in the data directory in development); a KMS provider can follow by
implementing the same two calls, so the secret never has to live in the process.
"""

from __future__ import annotations

import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from assay.core.crypto import derive_key, key_id

_NONCE_BYTES = 12


class KeyUnwrapError(RuntimeError):
    """A wrapped data key cannot be unwrapped: the key-encryption key is not the one
    that wrapped it (the encryption secret changed), or the stored value is damaged."""


class KeyProvider(Protocol):
    """Wraps data keys for storage and unwraps them for use."""

    @property
    def name(self) -> str:
        """Which key-encryption key this is (stored with each wrapped key); not secret."""

    async def wrap(self, data_key_id: str, data_key: bytes) -> bytes:
        """`data_key` sealed for storage, bound to its id."""

    async def unwrap(self, data_key_id: str, wrapped: bytes) -> bytes:
        """The data key back; raises KeyUnwrapError when it cannot be."""


def _aad(data_key_id: str) -> bytes:
    return f"assay data key v1|{data_key_id}".encode()


class LocalKeyProvider:
    """AES-256-GCM under a key-encryption key derived (HKDF) from the encryption secret."""

    def __init__(self, secret: str) -> None:
        kek = derive_key(secret, "assay key encryption v1")
        self._aead = AESGCM(kek)
        self._name = f"local:{key_id(kek).hex()}"

    @property
    def name(self) -> str:
        return self._name

    async def wrap(self, data_key_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, _aad(data_key_id))

    async def unwrap(self, data_key_id: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _aad(data_key_id)
            )
        except InvalidTag:
            msg = (
                f"data key {data_key_id} cannot be unwrapped with this key-encryption key "
                f"({self._name}): ASSAY_ENCRYPTION_KEY is not the secret that wrapped it"
            )
            raise KeyUnwrapError(msg) from None
