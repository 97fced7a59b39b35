"""Metric exposition in one process and across the workers of `assay serve`.

The end-to-end proof with real workers is in tests/test_server_lifecycle.py; these
tests pin the pieces: which registry is exposed, and how dead workers are dropped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from assay import __version__
from assay.core.metrics import (
    MULTIPROCESS_DIR_ENV,
    enable_multiprocess_mode,
    exposition_registry,
    mark_worker_stopped,
)

IN_FLIGHT = "assay_http_requests_in_flight"


def _write_in_flight(directory: Path, pid: int, value: float) -> Path:
    path = directory / f"gauge_livesum_{pid}.db"
    shared = MmapedDict(str(path))
    shared.write_value(
        mmap_key(IN_FLIGHT, IN_FLIGHT, [], [], "Requests being handled now."), value, 0.0
    )
    shared.close()
    return path


def _write_requests(directory: Path, pid: int, value: float) -> None:
    shared = MmapedDict(str(directory / f"counter_{pid}.db"))
    key = mmap_key(
        "assay_http_requests",
        "assay_http_requests_total",
        ["route", "method", "status"],
        ["/livez", "GET", "200"],
        "HTTP requests answered, by route template, method and status.",
    )
    shared.write_value(key, value, 0.0)
    shared.close()


def _exposed() -> dict[str, float]:
    text = generate_latest(exposition_registry()).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("route", "/livez") == "/livez"
    }


def _dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_one_process_exposes_its_own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    assert exposition_registry() is REGISTRY
    text = generate_latest(REGISTRY).decode()
    assert 'assay_build_info{python="' in text
    assert f'version="{__version__}"' in text


def test_workers_counts_are_added_up_and_dead_workers_live_gauges_dropped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MULTIPROCESS_DIR_ENV, str(tmp_path))
    dead, alive = _dead_pid(), os.getpid()
    _write_requests(tmp_path, dead, 5)
    _write_requests(tmp_path, alive, 7)
    dead_gauge = _write_in_flight(tmp_path, dead, 3)
    _write_in_flight(tmp_path, alive, 1)

    exposed = _exposed()
    # A dead worker's requests still count; its in-flight requests are gone with it.
    assert exposed["assay_http_requests_total"] == 12
    assert exposed[IN_FLIGHT] == 1
    assert not dead_gauge.exists()
    assert exposed["assay_build_info"] == 1

    mark_worker_stopped()  # this process, stopping cleanly
    assert _exposed().get(IN_FLIGHT, 0.0) == 0
    assert not (tmp_path / f"gauge_livesum_{alive}.db").exists()
    assert _exposed()["assay_http_requests_total"] == 12


def test_serve_gives_its_workers_a_fresh_private_directory_and_removes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)
    shared = enable_multiprocess_mode()
    try:
        assert os.environ[MULTIPROCESS_DIR_ENV] == str(shared.directory)
        assert list(shared.directory.iterdir()) == []
        assert shared.directory.stat().st_mode & 0o777 == 0o700
    finally:
        shared.close()
    assert MULTIPROCESS_DIR_ENV not in os.environ
    assert not shared.directory.exists()
