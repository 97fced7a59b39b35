"""Tables of the identity feature: tenants, people, their roles and credentials."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.sealed import register_sealed_column


class User(Base):
    """A person. Belongs to organisations through memberships."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Brute-force state, per factor, kept in the database so every process sees it.
    password_failures: Mapped[int] = mapped_column(Integer, default=0)
    password_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    otp_failures: Mapped[int] = mapped_column(Integer, default=0)
    otp_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    hard_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    # A pending MFA challenge issued before the latest lock is void.
    last_locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The last completed second factor: every MFA challenge issued before it is spent.
    last_mfa_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # TOTP: the seed is AES-GCM encrypted; the last accepted timecode blocks replays.
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    totp_last_timecode: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_confirmed_at is not None


class PasswordHistory(Base):
    __tablename__ = "password_history"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def totp_secret_aad(user_id: uuid.UUID) -> bytes:
    """Associated data binding a user's sealed TOTP secret to its table, row and column."""
    return f"users:{user_id}:totp_secret".encode()


register_sealed_column(User, "totp_secret_encrypted", ("id",), lambda row: totp_secret_aad(row.id))
