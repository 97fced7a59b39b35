"""Sealing the instance's secrets to a passphrase (scrypt, then AES-256-GCM)."""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from assay.backup.errors import BackupError

# A passphrase is typed by a person and kept beside the backup's storage: long, not complex.
MIN_PASSPHRASE_LENGTH = 15
# scrypt at 64 MiB of memory: slow enough to make guessing costly, once per restore.
_SCRYPT = {"n": 2**16, "r": 8, "p": 1}
_AAD = b"assay-backup-secrets/1"


def _key(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"])
    return kdf.derive(passphrase.encode("utf-8"))


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        msg = f"the passphrase must be at least {MIN_PASSPHRASE_LENGTH} characters long"
        raise BackupError(msg)


def seal(secrets: dict[str, str], passphrase: str) -> dict[str, Any]:
    check_passphrase(passphrase)
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = AESGCM(_key(passphrase, salt, _SCRYPT)).encrypt(
        nonce, json.dumps(secrets).encode("utf-8"), _AAD
    )
    return {
        "kdf": "scrypt",
        **_SCRYPT,
        "salt": salt.hex(),
        "cipher": "AES-256-GCM",
        "nonce": nonce.hex(),
        "ciphertext": sealed.hex(),
    }


def unseal(document: dict[str, Any], passphrase: str) -> dict[str, str]:
    try:
        params = {name: int(document[name]) for name in ("n", "r", "p")}
        key = _key(passphrase, bytes.fromhex(document["salt"]), params)
        plain = AESGCM(key).decrypt(
            bytes.fromhex(document["nonce"]), bytes.fromhex(document["ciphertext"]), _AAD
        )
    except InvalidTag:
        msg = "the passphrase does not open this backup's secrets"
        raise BackupError(msg) from None
    except (KeyError, ValueError, TypeError):
        msg = "the backup's sealed secrets are damaged"
        raise BackupError(msg) from None
    secrets: dict[str, str] = json.loads(plain)
    return secrets
