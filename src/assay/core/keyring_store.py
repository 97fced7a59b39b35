"""The data keys' storage, and the keeper that keeps this process's keyring in step
with it (the lifecycle itself, rotation and retirement, is assay.keys).

Every process loads the keyring at start. Afterwards it reads the keyring's generation
(one row, one cheap query) before a request whenever its last look is older than
`key_refresh_seconds`, and at once after it met a ciphertext of a key it does not
hold; a background loop does the same for work outside requests (jobs, scans). When
the generation moved, it unwraps the data keys again and swaps the ring in one step.
So a process seals with a new key from its first request that begins more than
`key_refresh_seconds` after the rotation committed (ADR 0024).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Integer, LargeBinary, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.crypto import Keyring, initial_data_key, key_id
from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.key_providers import KeyProvider
from assay.core.logging import get_logger
from assay.settings import Settings

log = get_logger("assay.keys")


class KeyState(StrEnum):
    ACTIVE = "active"  # seals every new value; exactly one key is active
    DECRYPT_ONLY = "decrypt_only"  # an earlier active key: still opens what it sealed
    RETIRED = "retired"  # its material is erased: nothing it sealed can be opened


class DataKey(Base):
    """A data key, wrapped by a key-encryption key (never stored in the clear)."""

    __tablename__ = "data_keys"

    # The 4-byte id every ciphertext starts with, in hex.
    key_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    # NULL once retired: the material is erased.
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Which key-encryption key wrapped it (the provider's name, e.g. local:1a2b3c4d).
    wrapped_by: Mapped[str] = mapped_column(String(128))
    # "imported" for the key derived from the encryption secret, "generated" otherwise.
    origin: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class KeyringGeneration(Base):
    """One row: a number every change of the data keys increases, so that processes
    see a change with one cheap query."""

    __tablename__ = "keyring_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


async def current_generation(db: AsyncSession) -> int:
    generation = await db.scalar(
        select(KeyringGeneration.generation).where(KeyringGeneration.id == 1)
    )
    return int(generation or 0)


async def bump_generation(db: AsyncSession) -> None:
    """Increase the generation; as the first write of a change it also serialises
    concurrent changes (the row is locked, or SQLite's write lock is taken)."""
    result = await db.execute(
        update(KeyringGeneration)
        .where(KeyringGeneration.id == 1)
        .values(generation=KeyringGeneration.generation + 1, updated_at=utcnow())
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        db.add(KeyringGeneration(id=1, generation=1, updated_at=utcnow()))


@dataclass(frozen=True, slots=True)
class _StoredKey:
    key_id: str
    state: str
    wrapped_key: bytes | None


class KeyringKeeper:
    """Loads, and reloads when it changed, the keyring one process seals with."""

    def __init__(
        self,
        settings: Settings,
        keyring: Keyring,
        provider: KeyProvider,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        if settings.encryption_key is None:
            msg = "the encryption key is not set (load settings with their generated secrets)"
            raise ValueError(msg)
        self.settings = settings
        self.keyring = keyring
        self.provider = provider
        self.sessionmaker = sessionmaker
        self._secret = settings.encryption_key.get_secret_value()
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()
        self.loaded = False

    async def load(self) -> None:
        """Read every usable data key and install them (importing the initial key into
        an empty table first)."""
        async with self._lock:
            await self._load()

    async def ensure_fresh(self) -> None:
        """Reload when the generation moved; looks at most every `key_refresh_seconds`,
        or at once after an unknown key id was met."""
        if not self._due():
            return
        async with self._lock:
            if not self._due():  # another task looked while this one waited
                return
            async with self.sessionmaker() as db:
                generation = await current_generation(db)
            self._checked_at = time.monotonic()
            if generation != self.keyring.generation or not self.loaded:
                await self._load()
            else:
                self.keyring.stale = False

    def _due(self) -> bool:
        if self.keyring.stale or not self.loaded:
            return True
        return time.monotonic() - self._checked_at >= self.settings.key_refresh_seconds

    async def _load(self) -> None:
        async with self.sessionmaker() as db:
            generation, keys = await self._read(db)
            if not keys:
                await self._import_initial_key(db)
                generation, keys = await self._read(db)
        material = {key.key_id: await self._unwrap(key) for key in keys}
        [active] = [key.key_id for key in keys if key.state == KeyState.ACTIVE]
        self.keyring.install(material, active, generation)
        self._checked_at = time.monotonic()
        if self.loaded:
            log.info("keyring_reloaded", active_key_id=active, generation=generation)
        self.loaded = True

    async def _read(self, db: AsyncSession) -> tuple[int, list[_StoredKey]]:
        generation = await current_generation(db)
        rows = await db.execute(
            select(DataKey.key_id, DataKey.state, DataKey.wrapped_key).where(
                DataKey.state != KeyState.RETIRED
            )
        )
        keys = [_StoredKey(kid, state, wrapped) for kid, state, wrapped in rows.all()]
        await db.rollback()
        return generation, keys

    async def _unwrap(self, key: _StoredKey) -> bytes:
        if key.wrapped_key is None:  # retired keys are not read; kept for the type checker
            msg = f"data key {key.key_id} has no material"
            raise ValueError(msg)
        return await self.provider.unwrap(key.key_id, key.wrapped_key)

    async def _import_initial_key(self, db: AsyncSession) -> None:
        """The key every ciphertext made before the key lifecycle carries, as the first
        active data key: nothing has to be re-encrypted for the upgrade."""
        material = initial_data_key(self._secret)
        kid = key_id(material).hex()
        now: datetime = utcnow()
        try:
            await bump_generation(db)
            db.add(
                DataKey(
                    key_id=kid,
                    state=KeyState.ACTIVE,
                    wrapped_key=await self.provider.wrap(kid, material),
                    wrapped_by=self.provider.name,
                    origin="imported",
                    created_at=now,
                    activated_at=now,
                )
            )
            await db.commit()
            log.info("data_key_imported", key_id=kid)
        except IntegrityError:
            # Another process starting at the same time imported it first (same key).
            await db.rollback()

    async def reload(self) -> None:
        """Reload now (after this process changed the keys)."""
        async with self._lock:
            await self._load()
