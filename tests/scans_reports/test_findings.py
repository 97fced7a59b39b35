from dataclasses import replace

from assay.scans.reports import DetectorResult, findings_of
from tests.scans_reports.builders import (
    CANARY,
    LLM01,
    MARKER,
    attempt,
    realistic_attempts,
)


def _by_label(findings):
    return {finding.taxonomy.label: finding for finding in findings}


def test_findings_count_answered_attempts_and_hits_per_taxonomy_entry():
    findings = _by_label(findings_of(realistic_attempts()))

    injection = findings["LLM01:2025"]
    assert (injection.attempts, injection.hits) == (2, 1)
    assert injection.success_rate == 0.5
    assert injection.severity == "high"
    assert injection.probes == ("prompt-injection/ignore-previous",)
    assert findings["AML.T0051"].hits == 1


def test_findings_carry_the_canary_and_the_marker_as_evidence():
    findings = _by_label(findings_of(realistic_attempts()))

    assert any(CANARY in excerpt for excerpt in findings["LLM07:2025"].evidence)
    assert any(MARKER in excerpt for excerpt in findings["LLM01:2025"].evidence)
    assert any("<script>" in excerpt for excerpt in findings["LLM05:2025"].evidence)


def test_errors_and_skipped_attempts_are_not_tries():
    findings = _by_label(findings_of(realistic_attempts()))

    for label in ("LLM02:2025", "LLM06:2025"):
        finding = findings[label]
        assert (finding.attempts, finding.hits, finding.success_rate) == (0, 0, 0.0)
        assert finding.severity == "none"
        assert finding.evidence == ()


def test_findings_are_ordered_worst_first():
    findings = findings_of(realistic_attempts())

    assert [finding.severity for finding in findings][:3] == ["critical", "high", "high"]
    assert findings[0].taxonomy.label == "LLM07:2025"
    assert findings[-1].severity == "none"


def test_severity_is_the_highest_among_hits_only():
    attempts = (
        attempt(0, severity="low", hit=True, answer=f"{MARKER} low"),
        attempt(1, severity="high", hit=True, answer=f"{MARKER} high"),
        attempt(2, severity="critical", hit=False),
    )

    finding = _by_label(findings_of(attempts))["LLM01:2025"]

    assert finding.taxonomy == LLM01
    assert finding.severity == "high"
    assert finding.success_rate == 2 / 3


def test_evidence_holds_at_most_five_distinct_short_excerpts():
    attempts = [
        attempt(
            index, hit=True, answer=f"{'filler ' * 40}Sure! ASSAY-MK-{index:06d} {'tail ' * 80}"
        )
        for index in range(8)
    ]
    attempts.append(replace(attempts[0], index=8))

    finding = _by_label(findings_of(attempts))["LLM01:2025"]

    assert len(finding.evidence) == 5
    assert len(set(finding.evidence)) == 5
    assert all(len(excerpt) <= 200 for excerpt in finding.evidence)
    assert "ASSAY-MK-000000" in finding.evidence[0]
    assert finding.evidence[0].startswith("…")


def test_evidence_falls_back_to_the_start_of_the_answer():
    attempts = [attempt(0, hit=True, answer="Here is a long poem\n\nabout  spring")]

    finding = _by_label(findings_of(attempts))["LLM01:2025"]

    assert finding.evidence == ("Here is a long poem about spring",)


def test_a_refusal_score_is_never_taken_for_a_hit():
    refused = attempt(
        0,
        detectors=(DetectorResult("redteam-refusal", 0.99, "The answer declines the request"),),
    )

    assert findings_of([refused])[0].hits == 0


def test_no_attempts_no_findings():
    assert findings_of([]) == ()


def test_an_attempt_tagged_twice_with_an_entry_counts_once_and_an_empty_answer_is_no_evidence():
    twice = attempt(0, hit=True, answer="", taxonomy=(LLM01, LLM01))

    (finding,) = findings_of([twice])

    assert (finding.attempts, finding.hits, finding.evidence) == (1, 1, ())
