"""A finished (or interrupted) scan rendered as JSON, SARIF 2.1.0, JUnit XML, HTML or
garak-compatible JSONL: pure functions over the frozen dataclasses of `model`."""

from assay.scans.reports.findings import findings_of
from assay.scans.reports.garak import render_garak_jsonl
from assay.scans.reports.html import render_html
from assay.scans.reports.json_report import render_json
from assay.scans.reports.junit import render_junit
from assay.scans.reports.model import (
    AttemptReport,
    DetectorResult,
    FindingReport,
    ScanReport,
    TaxonomyRef,
)
from assay.scans.reports.sarif import render_sarif

__all__ = [
    "AttemptReport",
    "DetectorResult",
    "FindingReport",
    "ScanReport",
    "TaxonomyRef",
    "findings_of",
    "render_garak_jsonl",
    "render_html",
    "render_json",
    "render_junit",
    "render_sarif",
]
