"""The targets an organisation has registered: where they are and their sealed secrets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.sealed import register_sealed_column
from assay.core.tenancy import TenantOwned

_DOUBLE = Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


class TargetRow(TenantOwned, Base):
    """One AI endpoint of one organisation; `name` is unique within the organisation."""

    __tablename__ = "scan_targets"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_scan_targets_org_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # openai_chat | rest
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    # openai_chat: the model asked for and its sampling temperature.
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    temperature: Mapped[float | None] = mapped_column(_DOUBLE, nullable=True)
    # rest: {"method", "body", "answer_path", "usage_path"}; the prompt replaces the one
    # string value "{{prompt}}" of the body (a JSON value, never spliced into text).
    rest: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    credential_header: Mapped[str] = mapped_column(String(100), default="Authorization")
    credential_scheme: Mapped[str] = mapped_column(String(20), default="Bearer")
    # AES-GCM under the keyring, bound to the organisation, this row and what it holds:
    # the owner's system prompt may be confidential, and is what leakage probes aim at.
    credential_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    system_prompt_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    requests_per_minute: Mapped[int] = mapped_column(Integer, default=60)
    concurrency: Mapped[int] = mapped_column(Integer, default=4)
    timeout_seconds: Mapped[float] = mapped_column(_DOUBLE, default=30.0)
    max_retries: Mapped[int] = mapped_column(Integer, default=2)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def target_aad(org_id: uuid.UUID, row_id: uuid.UUID, name: str, what: str) -> bytes:
    """Associated data binding a target's sealed `what` to its organisation, row and name."""
    return f"assay target {what} v1|{org_id}|{row_id}|{name}".encode()


register_sealed_column(
    TargetRow,
    "credential_encrypted",
    ("org_id", "id", "name"),
    lambda row: target_aad(row.org_id, row.id, row.name, "credential"),
)
register_sealed_column(
    TargetRow,
    "system_prompt_encrypted",
    ("org_id", "id", "name"),
    lambda row: target_aad(row.org_id, row.id, row.name, "system prompt"),
)
