"""The events table: an append-only, tenant-owned log that doubles as an outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.tenancy import TenantOwned


class Event(TenantOwned, Base):
    """One thing that happened, as consumers will see it: a type and a JSON payload."""

    __tablename__ = "events"
    # Consumers page through an organisation's events in the order they happened.
    __table_args__ = (Index("ix_events_org_created", "org_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(100), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
