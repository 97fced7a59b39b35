import json

from assay.scans.reports import render_json
from tests.scans_reports.builders import SCRIPT, odd_reports, realistic_report


def test_json_report_carries_summary_findings_and_every_attempt():
    document = json.loads(render_json(realistic_report()))

    assert document["report_format"] == "assay-redteam-report/v1"
    assert document["summary"] == {
        "attempts": 7,
        "answered": 5,
        "hits": 3,
        "errors": 1,
        "skipped": 1,
        "success_rate": 0.6,
        "highest_severity": "critical",
    }
    assert document["finished_at"] == "2026-12-07T18:02:00Z"
    assert document["findings"][0]["taxonomy"]["label"] == "LLM07:2025"
    assert len(document["attempts"]) == 7
    assert SCRIPT in document["attempts"][3]["answer"]
    assert document["attempts"][5]["answer"] is None
    assert document["attempts"][5]["error"].startswith("HTTP 503")


def test_json_report_writes_non_finite_numbers_as_null():
    document = json.loads(render_json(odd_reports()["odd values"]))

    scores = [result["score"] for result in document["attempts"][0]["detectors"]]
    assert scores == [None, None]
    assert document["attempts"][0]["latency_ms"] is None
