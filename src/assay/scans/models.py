"""Scans and every attempt they made."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from assay.core.db import Base
from assay.core.db_types import UTCDateTime, utcnow
from assay.core.sealed import register_sealed_column
from assay.core.tenancy import TenantOwned

_DOUBLE = Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


class Scan(TenantOwned, Base):
    """A scan: what it sends where, its budget and what it has spent. Its progress and
    state are its job's (`job_id`)."""

    __tablename__ = "scans"
    __table_args__ = (Index("ix_scans_org_created", "org_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    # The target as it was when the scan started (it may change or go later).
    target_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    target_name: Mapped[str] = mapped_column(String(40))
    target_kind: Mapped[str] = mapped_column(String(16))
    target_url: Mapped[str] = mapped_column(String(2000))
    # [{"name", "version", "probes"}] and the transform variants, as planned.
    probe_sets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    transforms: Mapped[list[str]] = mapped_column(JSON)
    detector_alias: Mapped[str] = mapped_column(String(64))
    # An LLM-as-judge detector: the target that grades answers, and its rubric.
    judge_target_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    judge_target_name: Mapped[str | None] = mapped_column(String(40), nullable=True)
    judge_rubric: Mapped[str | None] = mapped_column(Text, nullable=True)
    max_requests: Mapped[int] = mapped_column(Integer)
    max_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    concurrency: Mapped[int] = mapped_column(Integer)
    requests_used: Mapped[int] = mapped_column(Integer, default=0)
    tokens_used: Mapped[int] = mapped_column(Integer, default=0)
    # Per-scan tokens the probes plant (random; not secrets, but never reused).
    marker: Mapped[str] = mapped_column(String(40))
    canary: Mapped[str] = mapped_column(String(40))
    # Written when the scan's job ends: findings counts for lists and the webhook.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScanAttempt(TenantOwned, Base):
    """One prompt sent (or not: skipped for the budget) and what the detectors said.

    Written on its own as soon as it is answered, so a scan resumed after a crash sends
    only what has no row yet; (scan_id, number) is unique so a takeover race cannot
    record one twice.
    """

    __tablename__ = "scan_attempts"
    __table_args__ = (
        UniqueConstraint("scan_id", "number", name="uq_scan_attempts_scan_number"),
        Index("ix_scan_attempts_org_scan", "org_id", "scan_id", "number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    scan_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    number: Mapped[int] = mapped_column(Integer)
    probe_set: Mapped[str] = mapped_column(String(64))
    probe_set_version: Mapped[int] = mapped_column(Integer)
    probe_id: Mapped[str] = mapped_column(String(64))
    goal: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(16))
    taxonomy: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    transforms: Mapped[list[str]] = mapped_column(JSON)
    prompt: Mapped[str] = mapped_column(Text)
    # Sealed: an answer may hold exactly the secrets the scan made the target reveal.
    answer_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # answered | error | skipped
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(_DOUBLE, nullable=True)
    tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # [{"detector", "score", "rationale", "evidence"}]
    detectors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    hit: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def answer_aad(org_id: uuid.UUID, scan_id: uuid.UUID, number: int) -> bytes:
    """Associated data binding a sealed answer to its organisation, scan and attempt."""
    return f"assay scan answer v1|{org_id}|{scan_id}|{number}".encode()


register_sealed_column(
    ScanAttempt,
    "answer_encrypted",
    ("org_id", "scan_id", "number"),
    lambda row: answer_aad(row.org_id, row.scan_id, row.number),
)
