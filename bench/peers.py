"""A peer measured in the same run: MLServer serving the pack's LightGBM model.

MLServer (Seldon) is the best peer we measured on this machine for this job: an
Open Inference Protocol server with adaptive batching. It gets the same model file and,
since it validates nothing and does no feature engineering, the matrix the runtime
sees (the 46 vectorised features of each bench record) rather than the raw record.
It has no authentication, rate limits, records or logs to pay for: the comparison is
Assay with every guard on against a bare model server.

Its virtual environment lives in bench/.peers/ (git-ignored) and is created on first
use from PyPI; it never touches Assay's own environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
MLSERVER_VENV = HERE / ".peers" / "mlserver"
MLSERVER_PACKAGES = ("mlserver>=1.7", "mlserver-lightgbm>=1.7")
MLSERVER_MODEL = "lgbm"
# Adaptive batching as MLServer documents it: up to 64 requests, waiting at most 2 ms.
MLSERVER_MAX_BATCH_SIZE = 64
MLSERVER_MAX_BATCH_TIME = 0.002


def ensure_mlserver() -> Path:
    """The `mlserver` executable, installing it into bench/.peers/mlserver if needed."""
    executable = MLSERVER_VENV / "bin" / "mlserver"
    if executable.exists():
        return executable
    print(f"bench: installing {', '.join(MLSERVER_PACKAGES)} into {MLSERVER_VENV}", flush=True)
    if MLSERVER_VENV.exists():
        shutil.rmtree(MLSERVER_VENV)
    venv.create(MLSERVER_VENV, with_pip=True)
    subprocess.run(
        [str(MLSERVER_VENV / "bin" / "pip"), "install", "--quiet", *MLSERVER_PACKAGES],
        check=True,
    )
    return executable


def mlserver_bodies(directory: Path, matrices: Sequence[Sequence[float]]) -> Path:
    """One V2 inference request per bench record: its vectorised row as an FP64 tensor."""
    path = directory / "mlserver.jsonl"
    lines = []
    for row in matrices:
        body = {
            "inputs": [
                {"name": "input-0", "datatype": "FP64", "shape": [1, len(row)], "data": list(row)}
            ]
        }
        lines.append(json.dumps(body))
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def mlserver(executable: Path, model_file: Path, workdir: Path, port: int) -> Iterator[str]:
    """Serve `model_file` with MLServer on `port`; yields the infer URL."""
    root = workdir / "mlserver"
    model_dir = root / MLSERVER_MODEL
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_file, model_dir / "model.txt")
    settings: dict[str, Any] = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": port + 1,
        "metrics_port": port + 2,
        # Inference in the server process itself, like Assay's one process per worker
        # (MLServer 1.7 with a separate inference pool fails to start here under uvloop).
        "parallel_workers": 0,
    }
    (root / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": MLSERVER_MODEL,
        "implementation": "mlserver_lightgbm.LightGBMModel",
        "max_batch_size": MLSERVER_MAX_BATCH_SIZE,
        "max_batch_time": MLSERVER_MAX_BATCH_TIME,
        "parameters": {"uri": "./model.txt", "version": "v1"},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
    log = (workdir / "mlserver.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "PYTHON"))}
    process = subprocess.Popen(
        [str(executable), "start", str(root)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, base, workdir / "mlserver.log")
        yield f"{base}/v2/models/{MLSERVER_MODEL}/infer"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_ready(process: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"MLServer exited; see {log_path}")
        try:
            ready = httpx.get(f"{base}/v2/models/{MLSERVER_MODEL}/ready", timeout=2)
            if ready.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"MLServer did not become ready; see {log_path}")


if __name__ == "__main__":
    print(ensure_mlserver(), file=sys.stderr)
