"""The CI snippets of docs/redteam-reports.md parse, and their checks fail a build exactly
when the JUnit report has a finding."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from assay.scans.reports import render_junit
from tests.scans_reports.builders import realistic_attempts, realistic_report

DOC = Path(__file__).parents[2] / "docs" / "redteam-reports.md"


def _yaml_snippets() -> list[dict]:
    text = DOC.read_text(encoding="utf-8")
    return [yaml.safe_load(body) for body in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def _github_check() -> str:
    (workflow,) = [s for s in _yaml_snippets() if isinstance(s, dict) and "jobs" in s]
    (step,) = [s for s in workflow["jobs"]["scan"]["steps"] if s.get("name") == "Fail on a finding"]
    return step["run"].replace("python3", sys.executable)


def _gitlab_check() -> str:
    (pipeline,) = [s for s in _yaml_snippets() if isinstance(s, dict) and "redteam" in s]
    assert pipeline["redteam"]["artifacts"]["reports"]["junit"] == "assay-redteam.xml"
    return pipeline["redteam"]["script"][-1].replace("python3", sys.executable)


@pytest.mark.parametrize("check", [_github_check, _gitlab_check], ids=["github", "gitlab"])
def test_ci_check_fails_the_build_on_a_finding_only(tmp_path, check):
    without_hits = tuple(a for a in realistic_attempts() if not a.hit and a.status == "answered")
    reports = {"findings": realistic_report(), "clean": realistic_report(attempts=without_hits)}
    exits = {}
    for name, report in reports.items():
        (tmp_path / "assay-redteam.xml").write_bytes(render_junit(report))
        exits[name] = subprocess.run(
            ["bash", "-c", check()], cwd=tmp_path, capture_output=True, check=False
        ).returncode

    assert exits == {"findings": 1, "clean": 0}
