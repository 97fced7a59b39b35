"""What a report is made of: a scan, its attempts and the findings aggregated from them.

Frozen so a renderer can never change what another one renders; built by the scans
service from its rows (answers unsealed), or by hand in tests.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Severity = Literal["critical", "high", "medium", "low"]
FindingSeverity = Literal["critical", "high", "medium", "low", "none"]
AttemptStatus = Literal["answered", "error", "skipped"]


@dataclass(frozen=True, slots=True)
class TaxonomyRef:
    """One taxonomy entry a probe is tagged with, e.g. OWASP LLM 2025 `LLM01`."""

    framework: str
    version: str
    id: str
    name: str
    label: str
    owasp_2023: str | None


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """A detector's score in [0, 1] for one answer, and the rule that explains it."""

    detector: str
    score: float
    rationale: str


@dataclass(frozen=True, slots=True)
class AttemptReport:
    """One prompt sent (or not) to the target, its answer and the verdict."""

    index: int
    probe_set: str
    probe_set_version: int
    probe_id: str
    goal: str
    taxonomy: tuple[TaxonomyRef, ...]
    transforms: tuple[str, ...]
    prompt: str
    answer: str | None
    status: AttemptStatus
    error: str | None
    latency_ms: float | None
    detectors: tuple[DetectorResult, ...]
    hit: bool
    severity: Severity
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FindingReport:
    """The attempts of one taxonomy entry, aggregated: how often the attack worked."""

    taxonomy: TaxonomyRef
    attempts: int
    hits: int
    success_rate: float
    severity: FindingSeverity
    probes: tuple[str, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Everything every report format renders about one scan."""

    scan_id: str
    target_name: str
    target_kind: str
    target_url: str
    state: str
    created_at: datetime
    finished_at: datetime | None
    probe_sets: tuple[tuple[str, int], ...]
    transforms: tuple[str, ...]
    attempts: tuple[AttemptReport, ...]
    findings: tuple[FindingReport, ...]
    requests_used: int
    tokens_used: int
    assay_version: str
