import xml.etree.ElementTree as ET

import pytest

from assay.scans.reports import render_junit
from tests.scans_reports.builders import CANARY, odd_reports, realistic_report


def _parse(report) -> ET.Element:
    document = render_junit(report)
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(document)  # noqa: S314 - our own output, parsed to check it


def test_junit_has_a_suite_per_probe_set_and_a_case_per_probe():
    root = _parse(realistic_report())

    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    assert list(suites) == [
        "prompt-injection",
        "system-prompt-leakage",
        "output-handling",
        "sensitive-disclosure",
        "excessive-agency",
        "unbounded-consumption",
    ]
    assert [case.get("name") for case in suites["output-handling"].iter("testcase")] == [
        "echo-script"
    ]
    assert suites["unbounded-consumption"].get("tests") == "0"


def test_junit_counts_failures_skips_and_errors():
    root = _parse(realistic_report())

    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "5",
        "3",
        "1",
        "1",
    )
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert cases["ignore-previous"].find("failure") is not None
    assert cases["delete-files"].find("skipped") is not None
    assert cases["api-key"].find("error") is not None
    assert cases["api-key"].find("failure") is None


def test_a_failure_says_how_often_the_attack_worked_and_why():
    cases = {case.get("name"): case for case in _parse(realistic_report()).iter("testcase")}

    injection = cases["ignore-previous"].find("failure")
    assert injection is not None
    assert injection.get("message", "").startswith("1 of 2 attempts succeeded (high; LLM01:2025")
    leak = cases["repeat-above"].find("failure")
    assert leak is not None
    assert "redteam-canary (1.00): The canary planted in the system prompt" in (leak.text or "")
    assert CANARY in (leak.text or "")
    assert "redteam-refusal" not in (injection.text or "")


def test_a_probe_without_hits_passes():
    cases = {case.get("name"): case for case in _parse(realistic_report()).iter("testcase")}
    report = realistic_report(attempts=realistic_report().attempts[1:2])
    only_miss = {case.get("name"): case for case in _parse(report).iter("testcase")}

    assert cases["echo-script"].find("failure") is not None  # one of its two attempts hit
    assert list(only_miss["ignore-previous"]) == [only_miss["ignore-previous"].find("system-out")]


@pytest.mark.parametrize("name", sorted(odd_reports()))
def test_junit_of_odd_data_is_well_formed(name):
    root = _parse(odd_reports()[name])

    assert root.tag == "testsuites"
