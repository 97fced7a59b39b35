"""Findings: the attempts aggregated per taxonomy entry."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from assay.scans.reports.excerpts import EVIDENCE_LIMIT, evidence_excerpt, probe_key
from assay.scans.reports.model import AttemptReport, FindingReport, FindingSeverity, TaxonomyRef

SEVERITY_RANK: dict[str, int] = {"critical": 4, "high": 3, "medium": 2, "low": 1, "none": 0}
_SEVERITY_OF_RANK: dict[int, FindingSeverity] = {
    4: "critical",
    3: "high",
    2: "medium",
    1: "low",
    0: "none",
}


@dataclass(slots=True)
class _Tally:
    taxonomy: TaxonomyRef
    attempts: int = 0
    hits: int = 0
    severity_rank: int = 0
    probes: set[str] = field(default_factory=set)
    evidence: list[str] = field(default_factory=list)

    def add(self, attempt: AttemptReport) -> None:
        self.probes.add(probe_key(attempt))
        if attempt.status != "answered":
            return
        self.attempts += 1
        if not attempt.hit:
            return
        self.hits += 1
        self.severity_rank = max(self.severity_rank, SEVERITY_RANK.get(attempt.severity, 0))
        if len(self.evidence) < EVIDENCE_LIMIT:
            excerpt = evidence_excerpt(attempt)
            if excerpt and excerpt not in self.evidence:
                self.evidence.append(excerpt)

    def finding(self) -> FindingReport:
        return FindingReport(
            taxonomy=self.taxonomy,
            attempts=self.attempts,
            hits=self.hits,
            success_rate=self.hits / self.attempts if self.attempts else 0.0,
            severity=_SEVERITY_OF_RANK[self.severity_rank],
            probes=tuple(sorted(self.probes)),
            evidence=tuple(self.evidence),
        )


def findings_of(attempts: Iterable[AttemptReport]) -> tuple[FindingReport, ...]:
    """One finding per taxonomy entry the attempts are tagged with, worst first.

    `attempts` counts the answered attempts (errors and skipped ones are not tries),
    `hits` those that hit, `severity` is the highest severity among the hits ("none"
    without a hit), `probes` every probe tagged with the entry, and `evidence` at most
    five distinct excerpts of hit answers.
    """
    tallies: dict[tuple[str, str, str], _Tally] = {}
    for attempt in attempts:
        seen: set[tuple[str, str, str]] = set()
        for ref in attempt.taxonomy:
            key = (ref.framework, ref.version, ref.id)
            if key in seen:
                continue
            seen.add(key)
            tallies.setdefault(key, _Tally(taxonomy=ref)).add(attempt)
    ordered = sorted(
        tallies.items(), key=lambda item: (-item[1].severity_rank, -item[1].hits, item[0])
    )
    return tuple(tally.finding() for _, tally in ordered)
