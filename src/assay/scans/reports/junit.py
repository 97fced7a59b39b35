"""The JUnit XML report: a test suite per probe set and a test case per probe, failing
when any of the probe's attempts hit, so a CI pipeline fails its build on a finding."""

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field

from assay.scans.reports.excerpts import evidence_excerpt, fired_detectors
from assay.scans.reports.model import AttemptReport, ScanReport
from assay.scans.reports.text import as_utc, finite, one_line, printable, utf8


def render_junit(report: ScanReport) -> bytes:
    """The scan as a JUnit XML document (UTF-8, with an XML declaration)."""
    root = ET.Element("testsuites", name=_clean(f"Assay red-team scan {report.scan_id}"))
    timestamp = as_utc(report.created_at).strftime("%Y-%m-%dT%H:%M:%S")
    totals = _Counts()
    for probe_set in _probe_sets(report):
        counts = _suite(root, report, probe_set, timestamp)
        totals.add(counts)
    totals.write(root)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return utf8(f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n')


@dataclass(slots=True)
class _Counts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def add(self, other: "_Counts") -> None:
        self.tests += other.tests
        self.failures += other.failures
        self.errors += other.errors
        self.skipped += other.skipped
        self.seconds += other.seconds

    def write(self, element: ET.Element) -> None:
        element.set("tests", str(self.tests))
        element.set("failures", str(self.failures))
        element.set("errors", str(self.errors))
        element.set("skipped", str(self.skipped))
        element.set("time", f"{self.seconds:.3f}")


@dataclass(slots=True)
class _ProbeSet:
    name: str
    version: int | None
    probes: dict[str, list[AttemptReport]] = field(default_factory=dict)


def _probe_sets(report: ScanReport) -> list[_ProbeSet]:
    # The scan's probe sets in the order asked for (an empty suite when none of a set's
    # probes ran), then any set only the attempts name.
    sets: dict[str, _ProbeSet] = {
        name: _ProbeSet(name=name, version=version) for name, version in report.probe_sets
    }
    for attempt in report.attempts:
        probe_set = sets.setdefault(
            attempt.probe_set,
            _ProbeSet(name=attempt.probe_set, version=attempt.probe_set_version),
        )
        probe_set.probes.setdefault(attempt.probe_id, []).append(attempt)
    return list(sets.values())


def _suite(root: ET.Element, report: ScanReport, probe_set: _ProbeSet, timestamp: str) -> _Counts:
    suite = ET.SubElement(root, "testsuite", name=_clean(probe_set.name), timestamp=timestamp)
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("scan_id", report.scan_id),
        ("target", report.target_name),
        ("target_kind", report.target_kind),
        ("probe_set_version", "" if probe_set.version is None else str(probe_set.version)),
        ("assay_version", report.assay_version),
    ):
        ET.SubElement(properties, "property", name=name, value=_clean(value))
    counts = _Counts()
    for probe_id, attempts in probe_set.probes.items():
        counts.add(_case(suite, probe_set.name, probe_id, attempts))
    counts.write(suite)
    return counts


def _case(
    suite: ET.Element, probe_set: str, probe_id: str, attempts: Sequence[AttemptReport]
) -> _Counts:
    seconds = sum(finite(attempt.latency_ms) or 0.0 for attempt in attempts) / 1000
    case = ET.SubElement(
        suite,
        "testcase",
        name=_clean(probe_id),
        classname=_clean(f"assay.redteam.{probe_set}"),
        time=f"{seconds:.3f}",
    )
    counts = _Counts(tests=1, seconds=seconds)
    answered = [attempt for attempt in attempts if attempt.status == "answered"]
    hits = [attempt for attempt in answered if attempt.hit]
    goal = one_line(attempts[0].goal, 300)
    if hits:
        counts.failures = 1
        labels = ", ".join(ref.label for ref in attempts[0].taxonomy if ref.label)
        failure = ET.SubElement(
            case,
            "failure",
            message=_clean(
                f"{len(hits)} of {_attempts(len(answered))} succeeded"
                f" ({attempts[0].severity}{'; ' + labels if labels else ''}): {goal}"
            ),
            type=_clean(attempts[0].severity),
        )
        failure.text = _clean("\n\n".join(_hit_text(attempt) for attempt in hits))
    elif all(attempt.status == "skipped" for attempt in attempts):
        counts.skipped = 1
        ET.SubElement(
            case, "skipped", message=_clean(f"{_attempts(len(attempts))} skipped, none sent")
        )
    elif not answered:
        # Nothing was answered and something failed: the probe was not tested at all.
        counts.errors = 1
        failed = [attempt for attempt in attempts if attempt.status == "error"]
        error = ET.SubElement(
            case,
            "error",
            message=_clean(f"no attempt was answered; {len(failed)} failed"),
            type="target-error",
        )
        error.text = _clean(
            "\n".join(
                f"attempt {attempt.index}: {one_line(attempt.error, 500) or 'unknown error'}"
                for attempt in failed
            )
        )
    system_out = ET.SubElement(case, "system-out")
    system_out.text = _clean("\n".join(_attempt_line(attempt) for attempt in attempts))
    return counts


def _hit_text(attempt: AttemptReport) -> str:
    lines = [
        f"attempt {attempt.index} (transforms: {', '.join(attempt.transforms) or 'none'})",
    ]
    for result in fired_detectors(attempt) or attempt.detectors:
        score = finite(result.score)
        score_text = "n/a" if score is None else f"{score:.2f}"
        lines.append(f"  {result.detector} ({score_text}): {one_line(result.rationale, 500)}")
    excerpt = evidence_excerpt(attempt)
    if excerpt:
        lines.append(f"  evidence: {excerpt}")
    return "\n".join(lines)


def _attempt_line(attempt: AttemptReport) -> str:
    verdict: str = attempt.status
    if attempt.status == "answered":
        verdict = "hit" if attempt.hit else "no hit"
    latency = finite(attempt.latency_ms)
    timing = "" if latency is None else f", {latency:.0f} ms"
    transforms = ", ".join(attempt.transforms) or "none"
    return f"attempt {attempt.index}: {verdict} (transforms: {transforms}{timing})"


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def _clean(text: str) -> str:
    return printable(text)
