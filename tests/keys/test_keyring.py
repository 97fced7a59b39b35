"""The keyring and its keeper: swaps, unknown key ids, wrapping, the sealed-column
registry, and a changed encryption secret refused at start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import LargeBinary

import assay.app  # noqa: F401 - every feature's tables and sealed columns registered
from assay.core.crypto import (
    DecryptionError,
    Keyring,
    UnknownKeyError,
    ciphertext_key_id,
    new_data_key,
)
from assay.core.db import Base, Database
from assay.core.key_providers import KeyUnwrapError, LocalKeyProvider
from assay.core.keyring_store import KeyringKeeper
from assay.core.migrations import upgrade
from assay.core.sealed import sealed_columns
from assay.settings import Settings
from tests.conftest import new_secret


def test_every_encrypted_column_is_a_registered_sealed_column() -> None:
    encrypted = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name.endswith("_encrypted") and isinstance(column.type, LargeBinary)
    }
    registered = {sealed.name for sealed in sealed_columns()}
    assert encrypted == registered
    assert len(registered) == 8


def test_an_installed_ring_seals_with_its_active_key_and_opens_the_others() -> None:
    keyring = Keyring.from_secret(new_secret())
    old = keyring.encrypt(b"before", b"aad")
    first, second = new_data_key(), new_data_key()
    keyring.install(
        {"0a0b0c0d": first, "01020304": second},
        "01020304",
        7,
    )
    assert keyring.generation == 7
    sealed = keyring.encrypt(b"after", b"aad")
    assert ciphertext_key_id(sealed) == "01020304"
    assert keyring.decrypt(sealed, b"aad") == b"after"
    # The earlier key is not in the new ring: its ciphertext names a key it lacks.
    with pytest.raises(UnknownKeyError, match=ciphertext_key_id(old)):
        keyring.decrypt(old, b"aad")
    assert keyring.stale, "an unknown key id makes the keeper look again at once"
    with pytest.raises(ValueError, match="active key"):
        keyring.install({"0a0b0c0d": first}, "01020304", 8)


def test_reseal_moves_a_value_to_the_active_key_keeping_plaintext_and_binding() -> None:
    old, new = new_data_key(), new_data_key()
    keyring = Keyring(old)
    sealed = keyring.encrypt(b"value", b"where")
    keyring.install({ciphertext_key_id(sealed): old, "aabbccdd": new}, "aabbccdd", 1)
    resealed = keyring.reseal(sealed, b"where")
    assert ciphertext_key_id(resealed) == "aabbccdd"
    assert keyring.decrypt(resealed, b"where") == b"value"
    with pytest.raises(DecryptionError):
        keyring.decrypt(resealed, b"elsewhere")
    with pytest.raises(DecryptionError):
        keyring.reseal(sealed, b"elsewhere")


async def test_a_wrapped_key_opens_only_with_the_secret_that_wrapped_it() -> None:
    provider = LocalKeyProvider(new_secret())
    material = new_data_key()
    wrapped = await provider.wrap("01020304", material)
    assert material not in wrapped
    assert await provider.unwrap("01020304", wrapped) == material
    with pytest.raises(KeyUnwrapError, match="not the secret that wrapped it"):
        await LocalKeyProvider(new_secret()).unwrap("01020304", wrapped)
    with pytest.raises(KeyUnwrapError):
        await provider.unwrap("05060708", wrapped)  # bound to its id


async def test_a_changed_encryption_secret_is_refused_at_start(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(database_url=f"sqlite:///{tmp_path / 'keys.db'}")
    database = Database(settings)
    try:
        await upgrade(database.engine)
        secret = settings.encryption_key.get_secret_value() if settings.encryption_key else ""
        first = KeyringKeeper(
            settings, Keyring.from_secret(secret), LocalKeyProvider(secret), database.sessionmaker
        )
        await first.load()
        other = new_secret()
        keeper = KeyringKeeper(
            settings_factory(database_url=settings.database_url, encryption_key=other),
            Keyring.from_secret(other),
            LocalKeyProvider(other),
            database.sessionmaker,
        )
        with pytest.raises(KeyUnwrapError, match="ASSAY_ENCRYPTION_KEY"):
            await keeper.load()
    finally:
        await database.dispose()
