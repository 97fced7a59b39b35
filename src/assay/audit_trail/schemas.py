"""Response bodies of /v1/audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from assay.audit_trail.chain import ProblemKind, Report


class ProblemView(BaseModel):
    kind: ProblemKind = Field(
        description="edited, deleted, inserted, reordered, truncated, or checkpoint (a "
        "checkpoint whose signature does not hold)."
    )
    seq: int | None = Field(description="Sequence number where the chain first goes wrong.")
    event_id: str | None = Field(description="The event found there, if one is.")
    message: str


class VerifyView(BaseModel):
    chain: str = Field(description="The organisation's id, or `platform`.")
    ok: bool
    events: int = Field(description="Events checked and found in order.")
    head_seq: int
    head_hash: str
    checkpoints: int
    last_checkpoint_seq: int | None
    problem: ProblemView | None

    @classmethod
    def of(cls, report: Report) -> VerifyView:
        problem = report.problem
        return cls(
            chain=report.chain,
            ok=report.ok,
            events=report.events,
            head_seq=report.head_seq,
            head_hash=report.head_hash,
            checkpoints=report.checkpoints,
            last_checkpoint_seq=report.last_checkpoint_seq,
            problem=ProblemView(
                kind=problem.kind,
                seq=problem.seq,
                event_id=problem.event_id,
                message=problem.message,
            )
            if problem
            else None,
        )


class EventView(BaseModel):
    id: uuid.UUID
    seq: int | None = Field(description="Place in the chain; null until sealed (seconds).")
    occurred_at: datetime
    actor_kind: str
    actor_id: str | None
    action: str
    target_kind: str | None
    target_id: str | None
    outcome: str
    client_address: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str | None
    hash: str | None


class EventPage(BaseModel):
    items: list[EventView]
    next_cursor: str | None


class PublicKeyView(BaseModel):
    key_id: str = Field(description="Named by every checkpoint this key signed.")
    algorithm: str = "Ed25519"
    public_key_pem: str
