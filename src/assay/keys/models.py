"""Re-encryption runs (a platform table: it belongs to no organisation).

The data keys and the keyring's generation are core's tables (assay.core.keyring_store),
re-exported here with the rest of the lifecycle's tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.keyring_store import DataKey, KeyringGeneration, KeyState

__all__ = ["DataKey", "KeyReencryption", "KeyState", "KeyringGeneration", "RunState"]


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class KeyReencryption(Base):
    """A re-encryption run: re-seals every value not under the active key, a batch at a
    time; its progress and per-column cursors are committed with each batch."""

    __tablename__ = "key_reencryptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # The key that was active when the run was asked for.
    key_id: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), index=True, default=RunState.QUEUED)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    # Values that could not be opened (an unknown or retired key, a damaged value).
    failed: Mapped[int] = mapped_column(Integer, default=0)
    # {column name: last id handled} — where a successor continues.
    cursors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_by: Mapped[str] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
