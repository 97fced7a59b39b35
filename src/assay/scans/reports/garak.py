"""The attempts as garak-compatible report.jsonl lines, for tools that read garak's runs.

Written from garak's documented entry types, not its code: a `start_run setup` and an
`init` entry, then for each probe its `attempt` entries followed by one `eval` entry per
detector and a `probe_summary`, and a closing `completion` entry. Probe class names are
`<probe_set>.<probe_id>` and detector names `assay.<detector>`, garak's dotted shape.
"""

import json
import uuid
from collections.abc import Iterator
from typing import Any

from assay.scans.reports.excerpts import HIT_THRESHOLD, REFUSAL_DETECTOR
from assay.scans.reports.model import AttemptReport, ScanReport
from assay.scans.reports.text import finite, iso_utc, printable, utf8

# garak's attempt status values.
ATTEMPT_NEW, ATTEMPT_STARTED, ATTEMPT_COMPLETE = 0, 1, 2
_STATUS = {"answered": ATTEMPT_COMPLETE, "error": ATTEMPT_STARTED, "skipped": ATTEMPT_NEW}
# Attempt uuids are derived from the scan and the attempt's index, so an export is the
# same every time it is made.
_ATTEMPT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "assay:redteam:attempt")
# Characters JSON leaves raw that line splitters (str.splitlines) break lines at.
_LINE_BREAKERS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def render_garak_jsonl(report: ScanReport) -> bytes:
    """The scan as garak report.jsonl lines (UTF-8, one JSON object per line)."""
    return utf8("".join(_line(entry) for entry in _entries(report)))


def probe_classname(attempt: AttemptReport) -> str:
    """The garak-shaped `module.Class` name of the attempt's probe."""
    return f"{_dotless(attempt.probe_set)}.{_dotless(attempt.probe_id)}"


def detector_name(detector: str) -> str:
    """The garak-shaped `module.Class` name of an Assay detector."""
    return f"assay.{_dotless(detector)}"


def _entries(report: ScanReport) -> Iterator[dict[str, Any]]:
    probes: dict[str, list[AttemptReport]] = {}
    for attempt in report.attempts:
        probes.setdefault(probe_classname(attempt), []).append(attempt)
    yield {
        "entry_type": "start_run setup",
        "_config.version": None,
        "transient.run_id": report.scan_id,
        "transient.starttime_iso": iso_utc(report.created_at),
        "plugins.target_type": report.target_kind,
        "plugins.target_name": report.target_name,
        "plugins.probe_spec": ",".join(probes),
        "transient.active_probes": [f"probes.{name}" for name in probes],
        "run.generations": 1,
        "assay.version": report.assay_version,
        "assay.scan_id": report.scan_id,
        "assay.state": report.state,
        "assay.target_url": report.target_url,
        "assay.probe_sets": [
            {"name": name, "version": version} for name, version in report.probe_sets
        ],
        "assay.transforms": list(report.transforms),
        "assay.requests_used": report.requests_used,
        "assay.tokens_used": report.tokens_used,
    }
    yield {
        "entry_type": "init",
        # Not garak: readers that print the version see None and the producer below.
        "garak_version": None,
        "start_time": iso_utc(report.created_at),
        "run": report.scan_id,
        "producer": f"assay {report.assay_version}",
    }
    for name, attempts in probes.items():
        ordered = sorted(attempts, key=lambda attempt: attempt.index)
        for attempt in ordered:
            yield _attempt(report, attempt)
        yield from _evals(name, ordered)
    yield {
        "entry_type": "completion",
        "end_time": iso_utc(report.finished_at),
        "run": report.scan_id,
    }


def _message(text: str | None) -> dict[str, Any]:
    return {
        "text": text,
        "lang": "*",
        "data_path": None,
        "data_type": None,
        "data_checksum": None,
        "notes": {},
    }


def _scores(attempt: AttemptReport) -> dict[str, float | None]:
    # garak reads a score of 1.0 as "the attack worked"; the refusal detector means the
    # opposite, so it travels in the notes instead (the counting garak's users complain
    # about in its issues #1413 and #2197).
    if attempt.status != "answered":
        return {}
    return {
        detector_name(result.detector): finite(result.score)
        for result in attempt.detectors
        if result.detector != REFUSAL_DETECTOR
    }


def _attempt(report: ScanReport, attempt: AttemptReport) -> dict[str, Any]:
    prompt = {"turns": [{"role": "user", "content": _message(attempt.prompt)}], "notes": {}}
    outputs: list[dict[str, Any] | None]
    if attempt.status == "answered":
        outputs = [_message(attempt.answer)]
    elif attempt.status == "error":
        outputs = [None]
    else:
        outputs = []
    conversation_turns = list(prompt["turns"])
    if outputs and outputs[0] is not None:
        conversation_turns.append({"role": "assistant", "content": outputs[0]})
    scores = _scores(attempt)
    return {
        "entry_type": "attempt",
        "uuid": str(uuid.uuid5(_ATTEMPT_NAMESPACE, printable(f"{report.scan_id}/{attempt.index}"))),
        "seq": attempt.index,
        "status": _STATUS.get(attempt.status, ATTEMPT_NEW),
        "probe_classname": probe_classname(attempt),
        "probe_params": {},
        "targets": [],
        "prompt": prompt,
        "outputs": outputs,
        "detector_results": {name: [score] for name, score in scores.items()},
        "notes": {"assay": _notes(attempt)},
        "goal": attempt.goal,
        "conversations": [{"turns": conversation_turns, "notes": {}}],
        "reverse_translation_outputs": [],
        "intent": None,
    }


def _notes(attempt: AttemptReport) -> dict[str, Any]:
    return {
        "probe_set": attempt.probe_set,
        "probe_set_version": attempt.probe_set_version,
        "probe_id": attempt.probe_id,
        "taxonomy": [ref.label for ref in attempt.taxonomy],
        "owasp_2023": [ref.owasp_2023 for ref in attempt.taxonomy if ref.owasp_2023],
        "transforms": list(attempt.transforms),
        "status": attempt.status,
        "error": attempt.error,
        "latency_ms": finite(attempt.latency_ms),
        "hit": attempt.hit,
        "severity": attempt.severity,
        "created_at": iso_utc(attempt.created_at),
        "detectors": [
            {
                "detector": result.detector,
                "score": finite(result.score),
                "rationale": result.rationale,
            }
            for result in attempt.detectors
        ],
    }


def _evals(probe: str, attempts: list[AttemptReport]) -> Iterator[dict[str, Any]]:
    tallies: dict[str, dict[str, int]] = {}
    for attempt in attempts:
        for name, score in _scores(attempt).items():
            tally = tallies.setdefault(name, {"passed": 0, "fails": 0, "nones": 0})
            if score is None:
                tally["nones"] += 1
            elif score >= HIT_THRESHOLD:
                tally["fails"] += 1
            else:
                tally["passed"] += 1
    for name in sorted(tallies):
        tally = tallies[name]
        evaluated = tally["passed"] + tally["fails"]
        yield {
            "entry_type": "eval",
            "probe": probe,
            "detector": name,
            "passed": tally["passed"],
            "fails": tally["fails"],
            "nones": tally["nones"],
            # `total` is what garak wrote before it split it in two below.
            "total": evaluated,
            "total_evaluated": evaluated,
            "total_processed": evaluated + tally["nones"],
        }
    outputs = [attempt for attempt in attempts if attempt.status != "skipped"]
    yield {
        "entry_type": "probe_summary",
        "probe": probe,
        "inference_counts": {
            "total_evaluated": len(outputs),
            "nones": sum(1 for attempt in outputs if attempt.status == "error"),
        },
        "detection_counts": {
            "detectors": sorted(tallies),
            "passed": sum(tally["passed"] for tally in tallies.values()),
            "fails": sum(tally["fails"] for tally in tallies.values()),
            "nones": sum(tally["nones"] for tally in tallies.values()),
        },
    }


def _line(entry: dict[str, Any]) -> str:
    text = json.dumps(entry, ensure_ascii=False, allow_nan=False)
    for raw, escaped in _LINE_BREAKERS.items():
        text = text.replace(raw, escaped)
    return text + "\n"


def _dotless(name: str) -> str:
    return (name or "unnamed").replace(".", "_")
