"""The prediction records table: one row per scoring, inputs with PII sealed or dropped."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Integer,
    LargeBinary,
    String,
    Uuid,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.sealed import register_sealed_column
from assay.core.tenancy import TenantOwned

# Eight bytes everywhere: FLOAT already is on SQLite and PostgreSQL; MariaDB's is four.
_DOUBLE = Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


class PredictionRecord(TenantOwned, Base):
    """One scoring, as it was: inputs (PII encrypted), output, model version and digest."""

    __tablename__ = "prediction_records"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    model_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    model_name: Mapped[str] = mapped_column(String(100))
    version_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer)
    content_digest: Mapped[str] = mapped_column(String(64))
    principal_kind: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    inputs_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    derived: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(_DOUBLE)
    label: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    risk: Mapped[str | None] = mapped_column(String(64), nullable=True)
    latency_ms: Mapped[float] = mapped_column(_DOUBLE)
    # Answered from the prediction cache: the same answer, not computed again.
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def inputs_aad(org_id: uuid.UUID) -> bytes:
    """Associated data binding a record's sealed inputs to its organisation and column."""
    return f"{org_id}:prediction_records:inputs_encrypted".encode()


register_sealed_column(
    PredictionRecord, "inputs_encrypted", ("org_id",), lambda row: inputs_aad(row.org_id)
)
