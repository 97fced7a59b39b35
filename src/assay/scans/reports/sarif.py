"""The SARIF 2.1.0 report: one rule per probe, one result per attempt that hit.

The target is an endpoint, not a file, so results carry a logical location naming it
and no physical location (docs/redteam-reports.md says what that means for upload).
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from assay.scans.reports.excerpts import evidence_excerpt, fired_detectors, probe_key
from assay.scans.reports.model import AttemptReport, ScanReport, TaxonomyRef
from assay.scans.reports.text import finite, iso_utc, one_line, utf8

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_NAME = "Assay red-team"
FINGERPRINT_KEY = "assayRedteamProbe/v1"
# The scan states (a scan is a job) in which the run completed as asked.
SUCCESSFUL_STATES = frozenset({"succeeded"})

LEVEL_OF_SEVERITY = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
# GitHub code scanning reads this property: over 9.0 is critical, 7.0 to 8.9 high,
# 4.0 to 6.9 medium, under 4.0 low.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}

# Display names of the taxonomies probes are tagged with; an unknown framework is named
# by its own identifier.
_FRAMEWORKS: dict[str, dict[str, str]] = {
    "owasp-llm": {
        "name": "OWASP Top 10 for LLM Applications",
        "organization": "OWASP",
        "informationUri": "https://genai.owasp.org/llm-top-10/",
    },
    "mitre-atlas": {
        "name": "MITRE ATLAS",
        "organization": "MITRE",
        "informationUri": "https://atlas.mitre.org/",
    },
}
_DESCRIPTION_CHARS = 1000


def render_sarif(report: ScanReport) -> bytes:
    """The scan as a SARIF 2.1.0 log with one run (UTF-8 JSON)."""
    catalogue = _TaxonomyCatalogue()
    rules, rule_index = _rules(report.attempts, catalogue)
    results = [
        _result(report, attempt, rule_index[probe_key(attempt)], catalogue)
        for attempt in report.attempts
        if attempt.status == "answered" and attempt.hit
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": report.assay_version or "unknown",
                "rules": rules,
                "supportedTaxonomies": [
                    {"name": component["name"], "index": index}
                    for index, component in enumerate(catalogue.components())
                ],
            }
        },
        "automationDetails": {"id": f"assay-redteam/{_category(report.target_name)}/"},
        "invocations": [_invocation(report)],
        "results": results,
        "properties": {
            "scanId": report.scan_id,
            "target": {
                "name": report.target_name,
                "kind": report.target_kind,
                "url": report.target_url,
            },
            "probeSets": [
                {"name": name, "version": version} for name, version in report.probe_sets
            ],
            "transforms": list(report.transforms),
            "requestsUsed": report.requests_used,
            "tokensUsed": report.tokens_used,
        },
    }
    taxonomies = catalogue.components()
    if taxonomies:
        run["taxonomies"] = taxonomies
    log = {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}
    return utf8(json.dumps(log, ensure_ascii=False, indent=2, allow_nan=False) + "\n")


def probe_fingerprint(probe_set: str, probe_id: str, transforms: tuple[str, ...]) -> str:
    """A hash that names the same probe, transformed the same way, in every scan."""
    material = "\x1f".join([probe_set, probe_id, ",".join(sorted(transforms))])
    return hashlib.sha256(material.encode("utf-8", errors="replace")).hexdigest()


@dataclass(slots=True)
class _TaxonomyCatalogue:
    """The taxonomy entries used, one SARIF taxonomy component per (framework, version)."""

    _components: dict[tuple[str, str], dict[str, TaxonomyRef]] = field(default_factory=dict)

    def add(self, ref: TaxonomyRef) -> None:
        self._components.setdefault((ref.framework, ref.version), {}).setdefault(ref.id, ref)

    def _keys(self) -> list[tuple[str, str]]:
        # OWASP's Top 10 for LLM Applications first: it is what readers report against.
        return sorted(self._components, key=lambda key: (key[0] != "owasp-llm", key))

    def reference(self, ref: TaxonomyRef) -> dict[str, Any]:
        """A reportingDescriptorReference to `ref`'s taxon in its component."""
        key = (ref.framework, ref.version)
        component_index = self._keys().index(key)
        taxon_index = sorted(self._components[key]).index(ref.id)
        return {
            "id": ref.id,
            "index": taxon_index,
            "toolComponent": {"name": self._name(key), "index": component_index},
        }

    def components(self) -> list[dict[str, Any]]:
        """The run's `taxonomies`, each listing only the entries this scan used."""
        components = []
        for key in self._keys():
            framework, version = key
            known = _FRAMEWORKS.get(framework, {})
            entries = self._components[key]
            component: dict[str, Any] = {
                "name": self._name(key),
                "version": version,
                "isComprehensive": False,
                "taxa": [
                    {
                        "id": taxon_id,
                        "name": entries[taxon_id].name or taxon_id,
                        "shortDescription": {"text": entries[taxon_id].name or taxon_id},
                        "properties": {"label": entries[taxon_id].label},
                    }
                    for taxon_id in sorted(entries)
                ],
            }
            if "organization" in known:
                component["organization"] = known["organization"]
                component["informationUri"] = known["informationUri"]
            components.append(component)
        return components

    @staticmethod
    def _name(key: tuple[str, str]) -> str:
        framework, _ = key
        return _FRAMEWORKS.get(framework, {}).get("name", framework)


def _tags(taxonomy: tuple[TaxonomyRef, ...]) -> list[str]:
    tags = ["security", "llm-red-team"]
    for ref in taxonomy:
        tags.append(ref.label)
        if ref.owasp_2023:
            tags.append(f"owasp-llm-2023:{ref.owasp_2023}")
    return list(dict.fromkeys(tag for tag in tags if tag))


def _rules(
    attempts: tuple[AttemptReport, ...], catalogue: "_TaxonomyCatalogue"
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    first_attempts: dict[str, AttemptReport] = {}
    for attempt in attempts:
        first_attempts.setdefault(probe_key(attempt), attempt)
        for ref in attempt.taxonomy:
            catalogue.add(ref)
    rules = []
    index: dict[str, int] = {}
    for position, rule_id in enumerate(sorted(first_attempts)):
        attempt = first_attempts[rule_id]
        index[rule_id] = position
        goal = one_line(attempt.goal, _DESCRIPTION_CHARS) or rule_id
        labels = ", ".join(ref.label for ref in attempt.taxonomy if ref.label)
        full = f"{goal} (probe set {attempt.probe_set} v{attempt.probe_set_version}"
        full += f"; {labels})" if labels else ")"
        rules.append(
            {
                "id": rule_id,
                "shortDescription": {"text": goal},
                "fullDescription": {"text": full},
                "defaultConfiguration": {
                    "level": LEVEL_OF_SEVERITY.get(attempt.severity, "warning")
                },
                "relationships": [
                    {"target": catalogue.reference(ref), "kinds": ["relevant"]}
                    for ref in attempt.taxonomy
                ],
                "properties": {
                    "tags": _tags(attempt.taxonomy),
                    "security-severity": SECURITY_SEVERITY.get(attempt.severity, "5.5"),
                    "severity": attempt.severity,
                    "probeSet": attempt.probe_set,
                    "probeSetVersion": attempt.probe_set_version,
                },
            }
        )
    return rules, index


def _message(report: ScanReport, attempt: AttemptReport) -> str:
    goal = one_line(attempt.goal, _DESCRIPTION_CHARS) or probe_key(attempt)
    fired = fired_detectors(attempt) or attempt.detectors
    if fired:
        detectors = "; ".join(
            f"{result.detector} ({_score_text(result.score)}): {one_line(result.rationale, 300)}"
            for result in fired
        )
    else:
        detectors = "no detector result was recorded"
    transforms = ", ".join(attempt.transforms) or "none"
    return (
        f"{goal}: the attack worked against target '{report.target_name}' "
        f"(attempt {attempt.index}, transforms: {transforms}). Detectors: {detectors}."
    )


def _score_text(score: float) -> str:
    value = finite(score)
    return "n/a" if value is None else f"{value:.2f}"


def _result(
    report: ScanReport, attempt: AttemptReport, rule_index: int, catalogue: _TaxonomyCatalogue
) -> dict[str, Any]:
    return {
        "ruleId": probe_key(attempt),
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": LEVEL_OF_SEVERITY.get(attempt.severity, "warning"),
        "message": {"text": _message(report, attempt)},
        "locations": [
            {
                "logicalLocations": [
                    {
                        "name": report.target_name or report.target_url or "target",
                        "fullyQualifiedName": report.target_url or report.target_name,
                        "kind": "resource",
                    }
                ]
            }
        ],
        "partialFingerprints": {
            FINGERPRINT_KEY: probe_fingerprint(
                attempt.probe_set, attempt.probe_id, attempt.transforms
            )
        },
        "taxa": [catalogue.reference(ref) for ref in attempt.taxonomy],
        "properties": {
            "attempt": attempt.index,
            "probeSet": attempt.probe_set,
            "probeSetVersion": attempt.probe_set_version,
            "probeId": attempt.probe_id,
            "severity": attempt.severity,
            "transforms": list(attempt.transforms),
            "latencyMs": finite(attempt.latency_ms),
            "evidence": evidence_excerpt(attempt),
            "detectors": [
                {
                    "detector": result.detector,
                    "score": finite(result.score),
                    "rationale": result.rationale,
                }
                for result in attempt.detectors
            ],
            "createdAt": iso_utc(attempt.created_at),
        },
    }


def _invocation(report: ScanReport) -> dict[str, Any]:
    invocation: dict[str, Any] = {
        "executionSuccessful": report.state in SUCCESSFUL_STATES,
        "startTimeUtc": iso_utc(report.created_at),
        "toolExecutionNotifications": [
            {
                "level": "warning",
                "message": {
                    "text": f"attempt {attempt.index} ({probe_key(attempt)}) got no answer: "
                    + (one_line(attempt.error, 500) or "unknown error")
                },
                "timeUtc": iso_utc(attempt.created_at),
            }
            for attempt in report.attempts
            if attempt.status == "error"
        ],
        "properties": {"state": report.state},
    }
    if report.finished_at is not None:
        invocation["endTimeUtc"] = iso_utc(report.finished_at)
    return invocation


def _category(target_name: str) -> str:
    # GitHub takes everything before the last '/' of automationDetails.id as the
    # category: one per target, so two targets' alerts never close each other's.
    return target_name.replace("/", "_") or "target"
