"""Watched indicators: when each is checked next, and what it was last found to be."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.tenancy import TenantOwned

# Eight bytes everywhere: FLOAT already is on SQLite and PostgreSQL; MariaDB's is four.
_DOUBLE = Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


class WatchlistEntry(TenantOwned, Base):
    __tablename__ = "watchlist_entries"
    __table_args__ = (
        UniqueConstraint("org_id", "indicator_digest", name="uq_watchlist_entries_org_indicator"),
        Index("ix_watchlist_entries_next_check_at", "next_check_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    indicator: Mapped[str] = mapped_column(String(2048))
    indicator_digest: Mapped[str] = mapped_column(String(64))
    indicator_type: Mapped[str] = mapped_column(String(16))
    interval_seconds: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(500), default="")
    last_verdict: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_score: Mapped[float | None] = mapped_column(_DOUBLE, nullable=True)
    last_lookup_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Due when in the past. A checker claims an entry by moving this forward by its lease
    # (compare-and-set), so a checker that dies mid-check leaves it due again after that.
    next_check_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
