"""The providers an organisation has configured: its definition and its sealed credential."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.sealed import register_sealed_column
from assay.core.tenancy import TenantOwned


class ConfiguredProviderRow(TenantOwned, Base):
    """One provider of one organisation; `name` is unique within the organisation."""

    __tablename__ = "providers"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_providers_org_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(40))
    # The assay-provider/v1 document as registered (checked and compiled on the way in).
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # AES-GCM under the keyring, bound to the organisation, this row and the provider name.
    credential_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    credential_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def credential_aad(org_id: uuid.UUID, row_id: uuid.UUID, name: str) -> bytes:
    """Associated data binding a sealed credential to its organisation, row and name."""
    return f"assay provider credential v1|{org_id}|{row_id}|{name}".encode()


register_sealed_column(
    ConfiguredProviderRow,
    "credential_encrypted",
    ("org_id", "id", "name"),
    lambda row: credential_aad(row.org_id, row.id, row.name),
)
