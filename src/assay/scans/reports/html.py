"""The HTML report: one self-contained page that works under a strict CSP.

No script, no style attribute or element, no external resource: semantic HTML only,
rendered by Jinja2 with autoescaping on, since answers contain the markup the scan
provoked (a `<script>` in an answer must reach the reader as text).
"""

from dataclasses import dataclass
from typing import Any

import jinja2

from assay.scans.reports.excerpts import evidence_excerpt, fired, probe_key
from assay.scans.reports.model import AttemptReport, ScanReport
from assay.scans.reports.summary import summarise
from assay.scans.reports.text import finite, iso_utc, printable, utf8

# An answer longer than this is cut on the page (a runaway answer can be megabytes);
# the JSON report carries it whole.
ANSWER_DISPLAY_CHARS = 20_000

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("assay.scans.reports", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class _ShownAttempt:
    index: int
    probe: str
    goal: str
    labels: str
    transforms: str
    status: str
    verdict: str
    severity: str
    latency: str
    created_at: str
    prompt: str
    answer: str | None
    answer_cut: int
    error: str
    detectors: tuple[tuple[str, str, str, bool], ...]
    evidence: str
    hit: bool


def render_html(report: ScanReport) -> bytes:
    """The scan as a UTF-8 HTML page with a summary, the findings and every attempt."""
    template = _ENVIRONMENT.get_template("report.html.j2")
    return utf8(template.render(**_context(report)))


def _context(report: ScanReport) -> dict[str, Any]:
    summary = summarise(report)
    return {
        "scan": {
            "id": printable(report.scan_id),
            "target_name": printable(report.target_name),
            "target_kind": printable(report.target_kind),
            "target_url": printable(report.target_url),
            "state": printable(report.state),
            "requests_used": report.requests_used,
            "tokens_used": report.tokens_used,
            "assay_version": printable(report.assay_version),
        },
        "summary": summary,
        "success_rate": f"{summary.success_rate:.0%}",
        "created_at": iso_utc(report.created_at),
        "finished_at": iso_utc(report.finished_at) or "not finished",
        "probe_sets": printable(
            ", ".join(f"{name} v{version}" for name, version in report.probe_sets)
        ),
        "transforms": printable(", ".join(report.transforms)) or "none",
        "findings": [
            {
                "label": printable(finding.taxonomy.label),
                "name": printable(finding.taxonomy.name),
                "owasp_2023": printable(finding.taxonomy.owasp_2023),
                "severity": finding.severity,
                "attempts": finding.attempts,
                "hits": finding.hits,
                "success_rate": f"{finite(finding.success_rate) or 0.0:.0%}",
                "probes": [printable(probe) for probe in finding.probes],
                "evidence": [printable(excerpt) for excerpt in finding.evidence],
            }
            for finding in report.findings
        ],
        "attempts": [_shown(attempt) for attempt in report.attempts],
    }


def _shown(attempt: AttemptReport) -> _ShownAttempt:
    answer = None if attempt.answer is None else printable(attempt.answer)
    cut = 0
    if answer is not None and len(answer) > ANSWER_DISPLAY_CHARS:
        cut = len(answer) - ANSWER_DISPLAY_CHARS
        answer = answer[:ANSWER_DISPLAY_CHARS]
    hit = attempt.status == "answered" and attempt.hit
    latency = finite(attempt.latency_ms)
    return _ShownAttempt(
        index=attempt.index,
        probe=printable(probe_key(attempt)),
        goal=printable(attempt.goal),
        labels=printable(", ".join(ref.label for ref in attempt.taxonomy)) or "none",
        transforms=printable(", ".join(attempt.transforms)) or "none",
        status=attempt.status,
        verdict=_verdict(attempt),
        severity=attempt.severity,
        latency="n/a" if latency is None else f"{latency:.0f} ms",
        created_at=iso_utc(attempt.created_at) or "",
        prompt=printable(attempt.prompt),
        answer=answer,
        answer_cut=cut,
        error=printable(attempt.error),
        detectors=tuple(
            (
                printable(result.detector),
                _score(result.score),
                printable(result.rationale),
                fired(result),
            )
            for result in attempt.detectors
        ),
        evidence=printable(evidence_excerpt(attempt)) if hit else "",
        hit=hit,
    )


def _verdict(attempt: AttemptReport) -> str:
    if attempt.status == "answered":
        return "attack worked" if attempt.hit else "attack failed"
    if attempt.status == "error":
        return "no answer (error)"
    return "skipped"


def _score(score: float) -> str:
    value = finite(score)
    return "n/a" if value is None else f"{value:.2f}"
