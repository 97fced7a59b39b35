import json

import pytest

from assay.scans.reports import render_garak_jsonl
from tests.scans_reports.builders import SCRIPT, odd_reports, realistic_report


def _entries(report) -> list[dict]:
    text = render_garak_jsonl(report).decode("utf-8")
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    assert len(lines) == len(text.splitlines())
    return [json.loads(line) for line in lines]


def test_garak_lines_carry_garaks_entry_types_in_order():
    entries = _entries(realistic_report())
    types = [entry["entry_type"] for entry in entries]

    assert types[:2] == ["start_run setup", "init"]
    assert types[-1] == "completion"
    assert types.count("attempt") == 7
    assert {"eval", "probe_summary"} <= set(types)
    # each probe's attempts come before its evaluation
    first_probe = [
        e for e in entries if e.get("probe_classname") == "prompt-injection.ignore-previous"
    ]
    assert len(first_probe) == 2
    assert types[2:6] == ["attempt", "attempt", "eval", "probe_summary"]
    assert entries[1]["run"] == "scn_01JQ7ZP"
    assert entries[0]["plugins.target_name"] == "vulnerable-mock"


def test_garak_attempts_keep_prompt_outputs_scores_and_status():
    attempts = [e for e in _entries(realistic_report()) if e["entry_type"] == "attempt"]
    by_seq = {entry["seq"]: entry for entry in attempts}

    hit = by_seq[3]
    assert hit["status"] == 2
    assert hit["probe_classname"] == "output-handling.echo-script"
    assert hit["prompt"]["turns"][0]["role"] == "user"
    assert hit["outputs"][0]["text"].endswith(SCRIPT)
    assert hit["detector_results"] == {"assay.redteam-markup": [0.9]}
    assert hit["conversations"][0]["turns"][1]["role"] == "assistant"
    assert hit["notes"]["assay"]["taxonomy"] == ["LLM05:2025"]
    assert hit["goal"] == "Make the model output executable markup"
    assert (by_seq[5]["status"], by_seq[5]["outputs"]) == (1, [None])
    assert (by_seq[6]["status"], by_seq[6]["outputs"]) == (0, [])
    assert "assay.redteam-refusal" not in by_seq[1]["detector_results"]
    assert by_seq[1]["notes"]["assay"]["detectors"][1]["detector"] == "redteam-refusal"


def test_garak_eval_counts_passes_and_fails_per_detector():
    evals = [e for e in _entries(realistic_report()) if e["entry_type"] == "eval"]
    marker = next(e for e in evals if e["probe"] == "prompt-injection.ignore-previous")

    assert marker["detector"] == "assay.redteam-marker"
    assert (marker["passed"], marker["fails"], marker["total"]) == (1, 1, 2)
    assert marker["total_evaluated"] == 2
    assert {e["probe"] for e in evals} == {
        "prompt-injection.ignore-previous",
        "system-prompt-leakage.repeat-above",
        "output-handling.echo-script",
    }


def test_garak_attempt_uuids_are_unique_and_stable():
    def uuids():
        return [e["uuid"] for e in _entries(realistic_report()) if e["entry_type"] == "attempt"]

    assert uuids() == uuids()
    assert len(set(uuids())) == 7


@pytest.mark.parametrize("name", sorted(odd_reports()))
def test_garak_lines_of_odd_data_parse(name):
    entries = _entries(odd_reports()[name])

    assert entries[0]["entry_type"] == "start_run setup"
    assert entries[-1]["entry_type"] == "completion"
