"""Request and response bodies of the jobs API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from assay.core.schemas import StrictRequest
from assay.jobs.models import Job

JobKindName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$", max_length=40)]
JobStateName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ResultFormat = Literal["csv", "jsonl"]


class BatchScoreParams(StrictRequest):
    """Score every record with one model version, as `POST /v1/models/{name}/predict` does."""

    model: str = Field(min_length=1, max_length=100)
    alias: str | None = Field(None, max_length=64)
    version: int | None = Field(None, ge=1, le=2_147_483_647)
    explain: bool = False
    # Inline records (JSON submission); a file upload brings its own.
    records: list[Any] | None = Field(None, min_length=1)


class JobCreate(StrictRequest):
    kind: Literal["batch_score"]
    params: BatchScoreParams


class KindJobCreate(StrictRequest):
    """A job of a kind another package adds (for example `lookup_bulk`); its params are
    checked by that kind."""

    kind: JobKindName
    params: dict[str, Any]


class Progress(BaseModel):
    done: int
    total: int
    row_errors: int


class JobView(BaseModel):
    id: uuid.UUID
    kind: str
    state: str
    progress: Progress
    attempts: int
    submitted_by: str
    params: dict[str, Any]
    error: str | None
    cancel_requested: bool
    partial: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            kind=job.kind,
            state=job.state,
            progress=Progress(done=job.done, total=job.total, row_errors=job.row_errors),
            attempts=job.attempts,
            submitted_by=f"{job.submitted_by_kind}:{job.submitted_by}",
            params=job.params,
            error=job.error,
            cancel_requested=job.cancel_requested,
            partial=job.partial,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class JobPage(BaseModel):
    items: list[JobView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )
