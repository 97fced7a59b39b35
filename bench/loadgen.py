"""Load generators, each in its own process: wrk (preferred) or a small httpx script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "post.lua"
PYTHON_SCRIPT = HERE / "httpx_load.py"
MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class LoadResult:
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int
    tool: str

    @property
    def rps(self) -> float:
        """Successful requests per second: refused or failed ones are not throughput."""
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _parse(output: str, connections: int, tool: str) -> LoadResult:
    line = next((ln for ln in output.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"{tool} gave no summary:\n{output[-2000:]}")
    data = json.loads(line.removeprefix(MARKER))
    errors = sum(
        int(data.get(k, 0))
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return LoadResult(
        connections=connections,
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        p999_ms=data["p999_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=errors,
        tool=tool,
    )


def run_load(
    url: str, *, connections: int, seconds: float, bodies: Path, api_key: str
) -> LoadResult:
    """Drive `url` with `connections` concurrent keep-alive clients for `seconds`."""
    env = {**os.environ, "BENCH_BODIES": str(bodies), "BENCH_API_KEY": api_key}
    if wrk_available():
        # One wrk thread is plenty for loopback rates and leaves the second core to Assay.
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(WRK_SCRIPT),
            url,
        ]
        tool = "wrk"
    else:
        command = [
            sys.executable,
            str(PYTHON_SCRIPT),
            url,
            str(connections),
            f"{seconds:g}",
        ]
        tool = "httpx"
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return _parse(done.stdout, connections, tool)
