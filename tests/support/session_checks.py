"""Checks over the whole run, whichever processes ran which tests.

Under pytest-xdist each worker runs a share of the tests, and a worker's own
session-finish cannot fail the run. A check that needs the whole run's view (the
schemathesis coverage of success paths) has each process write what it saw to the
run's report directory; the controller (or the only process) adds them up and fails the
run. tests/conftest.py calls these from its pytest hooks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

SCHEMATHESIS_MODULE = "tests.security.test_schemathesis"
# Paths for things a test module builds while it is imported (before fixtures exist):
# pytest's own temporary directory for this process, set in pytest_configure.
_TMP_FACTORY: list[pytest.TempPathFactory] = []


def remember_tmp_path_factory(config: pytest.Config) -> None:
    # Set by pytest's tmpdir plugin in its own pytest_configure (we run after it).
    _TMP_FACTORY[:] = [config._tmp_path_factory]  # type: ignore[attr-defined]


def import_time_tmp_dir(name: str) -> Path:
    """A fresh directory under this run's pytest temporary directory (pytest keeps the
    last few runs' and removes older ones), for a module that needs one at import."""
    return _TMP_FACTORY[0].mktemp(name)


def write_schemathesis_report(session: pytest.Session, reports: Path, name: str) -> None:
    """What this process's schemathesis cases reached, if it ran any."""
    module = sys.modules.get(SCHEMATHESIS_MODULE)
    if module is None or not module.RAN:
        return
    operations = sorted(
        {
            label
            for item in session.items
            if (label := getattr(item, "operation_label", None)) is not None
        }
    )
    report = {
        "operations": operations,
        "ran": sorted(module.RAN),
        "succeeded": module.SUCCEEDED,
        # The controller of an xdist run never imports the module: the bar travels too.
        "must_succeed": sorted(module.MUST_SUCCEED),
        "min_succeeded": module.MIN_SUCCEEDED_WHEN_ALL_RAN,
    }
    (reports / f"schemathesis-{name}.json").write_text(json.dumps(report), encoding="utf-8")


def schemathesis_problems(reports: Path) -> list[str]:
    """Across every process: did the run reach the success paths it must?"""
    found = sorted(reports.glob("schemathesis-*.json"))
    if not found:
        return []
    operations: set[str] = set()
    ran: set[str] = set()
    succeeded: dict[str, int] = {}
    must: set[str] = set()
    minimum = 0
    for path in found:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        path.unlink()
        operations.update(report["operations"])
        ran.update(report["ran"])
        for label, count in report["succeeded"].items():
            succeeded[label] = succeeded.get(label, 0) + count
        must.update(report["must_succeed"])
        minimum = max(minimum, report["min_succeeded"])
    if ran != operations:
        return []  # only part of the module ran (-k, a single test): nothing to add up
    problems = []
    missing = sorted(must - set(succeeded))
    if missing:
        problems.append(f"FAILED: schemathesis reached no success path of {missing}")
    if len(succeeded) < minimum:
        problems.append(
            f"FAILED: schemathesis reached the success path of {len(succeeded)} of "
            f"{len(operations)} operations; at least {minimum} are expected"
        )
    return problems
