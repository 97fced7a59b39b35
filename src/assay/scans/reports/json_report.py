"""The JSON report: every field of the scan, its findings and its attempts, plus a summary."""

import json
from typing import Any

from assay.scans.reports.model import (
    AttemptReport,
    DetectorResult,
    FindingReport,
    ScanReport,
    TaxonomyRef,
)
from assay.scans.reports.summary import summarise
from assay.scans.reports.text import finite, iso_utc, utf8

REPORT_FORMAT = "assay-redteam-report/v1"


def render_json(report: ScanReport) -> bytes:
    """The scan as one UTF-8 JSON document (`report_format` names its version)."""
    summary = summarise(report)
    document = {
        "report_format": REPORT_FORMAT,
        "scan_id": report.scan_id,
        "state": report.state,
        "created_at": iso_utc(report.created_at),
        "finished_at": iso_utc(report.finished_at),
        "target": {
            "name": report.target_name,
            "kind": report.target_kind,
            "url": report.target_url,
        },
        "probe_sets": [{"name": name, "version": version} for name, version in report.probe_sets],
        "transforms": list(report.transforms),
        "requests_used": report.requests_used,
        "tokens_used": report.tokens_used,
        "assay_version": report.assay_version,
        "summary": {
            "attempts": summary.attempts,
            "answered": summary.answered,
            "hits": summary.hits,
            "errors": summary.errors,
            "skipped": summary.skipped,
            "success_rate": summary.success_rate,
            "highest_severity": summary.highest_severity,
        },
        "findings": [_finding(finding) for finding in report.findings],
        "attempts": [_attempt(attempt) for attempt in report.attempts],
    }
    return utf8(json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False) + "\n")


def _taxonomy(ref: TaxonomyRef) -> dict[str, Any]:
    return {
        "framework": ref.framework,
        "version": ref.version,
        "id": ref.id,
        "name": ref.name,
        "label": ref.label,
        "owasp_2023": ref.owasp_2023,
    }


def _finding(finding: FindingReport) -> dict[str, Any]:
    return {
        "taxonomy": _taxonomy(finding.taxonomy),
        "attempts": finding.attempts,
        "hits": finding.hits,
        "success_rate": finite(finding.success_rate),
        "severity": finding.severity,
        "probes": list(finding.probes),
        "evidence": list(finding.evidence),
    }


def _detector(result: DetectorResult) -> dict[str, Any]:
    return {
        "detector": result.detector,
        "score": finite(result.score),
        "rationale": result.rationale,
    }


def _attempt(attempt: AttemptReport) -> dict[str, Any]:
    return {
        "index": attempt.index,
        "probe_set": attempt.probe_set,
        "probe_set_version": attempt.probe_set_version,
        "probe_id": attempt.probe_id,
        "goal": attempt.goal,
        "taxonomy": [_taxonomy(ref) for ref in attempt.taxonomy],
        "transforms": list(attempt.transforms),
        "prompt": attempt.prompt,
        "answer": attempt.answer,
        "status": attempt.status,
        "error": attempt.error,
        "latency_ms": finite(attempt.latency_ms),
        "detectors": [_detector(result) for result in attempt.detectors],
        "hit": attempt.hit,
        "severity": attempt.severity,
        "created_at": iso_utc(attempt.created_at),
    }
