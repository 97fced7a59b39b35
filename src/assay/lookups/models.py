"""Past lookups: the indicator, each provider's result, and the verdict."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, String, Uuid
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.tenancy import TenantOwned

# Eight bytes everywhere: FLOAT already is on SQLite and PostgreSQL; MariaDB's is four.
_DOUBLE = Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


class Lookup(TenantOwned, Base):
    __tablename__ = "lookups"
    __table_args__ = (
        Index("ix_lookups_org_created", "org_id", "created_at", "id"),
        # By digest: an index on the 2,048-character text exceeds MariaDB's key length.
        Index("ix_lookups_org_indicator", "org_id", "indicator_digest"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    indicator: Mapped[str] = mapped_column(String(2048))
    # SHA-256 of "type:value", hex: what history filters on.
    indicator_digest: Mapped[str] = mapped_column(String(64))
    indicator_type: Mapped[str] = mapped_column(String(16))
    # malicious / suspicious / clean (the model's bands), or unknown: no provider answered.
    verdict: Mapped[str] = mapped_column(String(40))
    score: Mapped[float | None] = mapped_column(_DOUBLE, nullable=True)  # 0-100
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)  # name@version
    # One entry per provider asked: status, score, weight, contribution, evidence, ...
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    redistributed: Mapped[bool] = mapped_column(Boolean, default=False)
    duration_ms: Mapped[float] = mapped_column(_DOUBLE, default=0.0)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
