"""The counts every report opens with."""

from dataclasses import dataclass

from assay.scans.reports.findings import SEVERITY_RANK
from assay.scans.reports.model import FindingSeverity, ScanReport


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """How many attempts were made, answered, hit, failed and skipped."""

    attempts: int
    answered: int
    hits: int
    errors: int
    skipped: int
    success_rate: float
    highest_severity: FindingSeverity


def summarise(report: ScanReport) -> ScanSummary:
    """The scan's counts; the success rate is hits over answered attempts."""
    answered = [attempt for attempt in report.attempts if attempt.status == "answered"]
    hits = [attempt for attempt in answered if attempt.hit]
    highest: FindingSeverity = "none"
    for attempt in hits:
        if SEVERITY_RANK.get(attempt.severity, 0) > SEVERITY_RANK[highest]:
            highest = attempt.severity
    return ScanSummary(
        attempts=len(report.attempts),
        answered=len(answered),
        hits=len(hits),
        errors=sum(1 for attempt in report.attempts if attempt.status == "error"),
        skipped=sum(1 for attempt in report.attempts if attempt.status == "skipped"),
        success_rate=len(hits) / len(answered) if answered else 0.0,
        highest_severity=highest,
    )
