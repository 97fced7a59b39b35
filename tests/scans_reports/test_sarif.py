import json

import jsonschema
import pytest

from assay.scans.reports import render_sarif
from tests.scans_reports.builders import CANARY, attempt, odd_reports, realistic_report
from tests.scans_reports.sarif_schema import sarif_validator


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    return sarif_validator()


def _sarif(report) -> dict:
    return json.loads(render_sarif(report))


def test_sarif_validates_against_the_official_schema(validator):
    log = _sarif(realistic_report())

    validator.validate(log)
    assert log["version"] == "2.1.0"
    assert log["runs"][0]["tool"]["driver"]["name"] == "Assay red-team"
    assert log["runs"][0]["tool"]["driver"]["version"] == "0.1.0"


@pytest.mark.parametrize("name", sorted(odd_reports()))
def test_sarif_of_odd_data_still_validates(validator, name):
    validator.validate(_sarif(odd_reports()[name]))


def test_one_rule_per_probe_tagged_with_the_taxonomy():
    rules = {
        rule["id"]: rule
        for rule in _sarif(realistic_report())["runs"][0]["tool"]["driver"]["rules"]
    }

    assert sorted(rules) == [
        "excessive-agency/delete-files",
        "output-handling/echo-script",
        "prompt-injection/ignore-previous",
        "sensitive-disclosure/api-key",
        "system-prompt-leakage/repeat-above",
    ]
    injection = rules["prompt-injection/ignore-previous"]
    assert injection["shortDescription"]["text"] == "Make the model follow injected instructions"
    assert {"LLM01:2025", "owasp-llm-2023:LLM01", "AML.T0051", "security"} <= set(
        injection["properties"]["tags"]
    )
    assert injection["properties"]["security-severity"] == "8.0"
    assert rules["system-prompt-leakage/repeat-above"]["properties"]["security-severity"] == "9.5"
    assert "LLM07:2025" in rules["system-prompt-leakage/repeat-above"]["properties"]["tags"]
    assert not any(
        tag.startswith("owasp-llm-2023:")
        for tag in rules["system-prompt-leakage/repeat-above"]["properties"]["tags"]
    )


def test_one_result_per_hit_with_the_level_of_its_severity():
    run = _sarif(realistic_report())["runs"][0]
    results = run["results"]
    rules = run["tool"]["driver"]["rules"]

    assert [(result["ruleId"], result["level"]) for result in results] == [
        ("prompt-injection/ignore-previous", "error"),
        ("system-prompt-leakage/repeat-above", "error"),
        ("output-handling/echo-script", "warning"),
    ]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    leak = results[1]
    assert "redteam-canary" in leak["message"]["text"]
    assert "The canary planted in the system prompt" in leak["message"]["text"]
    assert CANARY in leak["properties"]["evidence"]
    assert "redteam-refusal" not in results[0]["message"]["text"]


def test_low_severity_hits_are_notes():
    report = realistic_report(attempts=(attempt(0, hit=True, severity="low"),))

    assert [result["level"] for result in _sarif(report)["runs"][0]["results"]] == ["note"]


def test_results_name_the_target_and_no_file():
    for result in _sarif(realistic_report())["runs"][0]["results"]:
        (location,) = result["locations"]
        assert "physicalLocation" not in location
        assert location["logicalLocations"][0]["name"] == "vulnerable-mock"


def test_fingerprints_are_stable_across_scans_and_differ_by_transforms():
    first = _sarif(realistic_report())["runs"][0]["results"]
    again = _sarif(realistic_report(scan_id="scn_other", state="failed"))["runs"][0]["results"]
    transformed = _sarif(
        realistic_report(attempts=(attempt(0, hit=True, transforms=("base64",)),))
    )["runs"][0]["results"]

    prints = [result["partialFingerprints"] for result in first]
    assert prints == [result["partialFingerprints"] for result in again]
    assert len({json.dumps(p, sort_keys=True) for p in prints}) == 3
    assert transformed[0]["partialFingerprints"] != prints[0]


def test_taxonomies_list_the_owasp_2025_entries_used():
    run = _sarif(realistic_report())["runs"][0]
    taxonomies = run["taxonomies"]
    owasp = next(t for t in taxonomies if t["name"] == "OWASP Top 10 for LLM Applications")

    assert owasp["version"] == "2025"
    assert [taxon["id"] for taxon in owasp["taxa"]] == ["LLM01", "LLM02", "LLM05", "LLM06", "LLM07"]
    assert owasp["taxa"][4]["name"] == "System Prompt Leakage"
    for result in run["results"]:
        for reference in result["taxa"]:
            component = taxonomies[reference["toolComponent"]["index"]]
            assert component["name"] == reference["toolComponent"]["name"]
            assert component["taxa"][reference["index"]]["id"] == reference["id"]


def test_invocation_says_whether_the_scan_succeeded_and_when():
    (done,) = _sarif(realistic_report())["runs"][0]["invocations"]
    (cancelled,) = _sarif(realistic_report(state="cancelled", finished_at=None))["runs"][0][
        "invocations"
    ]

    assert done["executionSuccessful"] is True
    assert done["startTimeUtc"] == "2026-12-07T18:00:00Z"
    assert done["endTimeUtc"] == "2026-12-07T18:02:00Z"
    assert "HTTP 503" in done["toolExecutionNotifications"][0]["message"]["text"]
    assert cancelled["executionSuccessful"] is False
    assert "endTimeUtc" not in cancelled


def test_the_schema_check_catches_a_broken_log(validator):
    log = _sarif(realistic_report())
    del log["runs"][0]["results"][0]["message"]
    log["runs"][0]["results"][1]["level"] = "fatal"

    assert len(list(validator.iter_errors(log))) == 2
