"""Request and response bodies of /v1/scans."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from assay.core.schemas import StrictRequest

NAME = r"^[a-z][a-z0-9_-]{0,63}$"
ReportFormat = Literal["json", "sarif", "junit", "html", "garak"]
Name = Annotated[str, Field(pattern=NAME, max_length=64)]


# The job kind a scan runs as, and its stored params (scans are started through
# POST /v1/scans only: assay.scans.kind).
SCAN_KIND = "redteam_scan"


class ScanJobParams(StrictRequest):
    scan_id: str = Field(pattern=r"^[0-9a-f-]{36}$", max_length=36)


class JudgeOptions(StrictRequest):
    """An LLM-as-judge detector: another registered target grades each answered attempt."""

    target: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$", max_length=40)
    rubric: str | None = Field(
        None,
        min_length=1,
        max_length=4000,
        description="What the judge is told to grade by; Assay's default rubric if omitted.",
    )


class ScanCreate(StrictRequest):
    target: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$", max_length=40)
    probe_sets: list[Name] | None = Field(
        None,
        min_length=1,
        max_length=50,
        description="Probe sets to send (GET /v1/scans/probe-sets); all when omitted.",
    )
    transforms: list[Name] = Field(
        default_factory=list,
        max_length=10,
        description="Each probe is sent once more with each of these transforms applied.",
    )
    include_plain: bool = Field(True, description="Send each probe untransformed too.")
    max_requests: int | None = Field(
        None, ge=1, le=100_000, description="Budget: requests at most (default: one per attempt)."
    )
    max_tokens: int | None = Field(
        None, ge=1, le=1_000_000_000, description="Budget: tokens, when the target reports usage."
    )
    concurrency: int | None = Field(
        None, ge=1, le=32, description="Requests in flight at once (at most the target's)."
    )
    detector_alias: str = Field(
        "production", pattern=NAME, max_length=64, description="Alias of the detector models."
    )
    judge: JudgeOptions | None = Field(
        None, description="Also let another target grade every answer (LLM-as-judge)."
    )


class ProbeSetProgress(BaseModel):
    name: str
    version: int
    planned: int
    done: int
    hits: int


class TargetRef(BaseModel):
    name: str
    kind: str
    url: str


class Budget(BaseModel):
    max_requests: int
    max_tokens: int | None
    requests_used: int
    tokens_used: int


class FindingSummary(BaseModel):
    taxonomy: str
    name: str
    attempts: int
    hits: int
    success_rate: float
    severity: str


class ScanView(BaseModel):
    id: uuid.UUID
    job_id: uuid.UUID
    state: str
    cancel_requested: bool
    target: TargetRef
    probe_sets: list[ProbeSetProgress]
    transforms: list[str]
    concurrency: int
    judge: str | None = Field(description="The judge target's name, when one grades answers.")
    budget: Budget
    done: int
    total: int
    hits: int
    findings: list[FindingSummary] | None = Field(
        None, description="Once the scan has ended: findings per taxonomy entry."
    )
    created_at: datetime
    finished_at: datetime | None
    events_url: str = Field(description="Live progress: the scan's job events (SSE).")


class ScanPage(BaseModel):
    items: list[ScanView]
    next_cursor: str | None


class DetectorOutcome(BaseModel):
    detector: str
    score: float
    rationale: str


class AttemptView(BaseModel):
    number: int
    probe_set: str
    probe_set_version: int
    probe_id: str
    goal: str
    severity: str
    taxonomy: list[str]
    transforms: list[str]
    prompt: str
    answer: str | None
    status: str
    error: str | None
    latency_ms: float | None
    tokens: int | None
    detectors: list[DetectorOutcome]
    hit: bool
    created_at: datetime


class AttemptPage(BaseModel):
    items: list[AttemptView]
    next_after: int | None = Field(description="`after` for the next page; null: the last.")


class FindingView(BaseModel):
    taxonomy: str
    framework: str
    version: str
    id: str
    name: str
    owasp_2023: str | None
    attempts: int
    hits: int
    success_rate: float
    severity: str
    probes: list[str]
    evidence: list[str]


class ProbeSetView(BaseModel):
    name: str
    version: int
    description: str
    probes: int
    taxonomy: list[str]
