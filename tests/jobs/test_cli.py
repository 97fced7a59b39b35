"""`assay jobs` against a real `assay serve`: submit and watch, list, show, download."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.demo import DEFAULT_PACK, SAMPLE
from tests.jobs.workers import ASSAY
from tests.security.test_server_limits import _serve, _stop


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """A running server with the demo organisation; the CLI's environment and its URL."""
    process, port = _serve(tmp_path, "server", ASSAY_JOBS_CHUNK_ROWS="40")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
        env.update(ASSAY_ENV="test", ASSAY_DATA_DIR=str(tmp_path / "server"))
        demo = subprocess.run(
            [str(ASSAY), "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
        )
        key = re.search(r"API key \(shown once\): (\S+)", demo.stdout)
        assert key is not None, demo.stdout
        env["ASSAY_API_KEY"] = key.group(1)
        yield env, f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def _assay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ASSAY), *args], env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_submit_watch_list_show_and_download(
    served: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, url = served
    sample = json.loads((DEFAULT_PACK / SAMPLE).read_text())
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(sample) + "\n" for _ in range(100)))

    watched = _assay(
        env, "jobs", "submit", str(rows), "--model", "startup-success", "--url", url, "--watch"
    )
    assert watched.returncode == 0, watched.stderr
    assert "succeeded: 100 of 100 rows, 0 with errors" in watched.stdout
    job_id = re.search(r"job ([0-9a-f-]{36})", watched.stderr)
    assert job_id is not None, watched.stderr

    listed = _assay(env, "jobs", "list", "--url", url)
    assert job_id.group(1) in listed.stdout
    shown = _assay(env, "jobs", "show", job_id.group(1), "--url", url)
    assert json.loads(shown.stdout)["state"] == "succeeded"
    result = _assay(env, "jobs", "result", job_id.group(1), "--format", "csv", "--url", url)
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["row"]) for r in table] == list(range(100))
    rewatched = _assay(env, "jobs", "watch", job_id.group(1), "--url", url)
    assert rewatched.returncode == 0

    missing = _assay(env, "jobs", "show", "00000000-0000-0000-0000-000000000000", "--url", url)
    assert missing.returncode == 1
    assert "Error (404)" in missing.stderr
