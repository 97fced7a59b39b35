"""Batch-scoring jobs: rows/s of one CSV job with one and with two `assay worker`s, against
``POST /v1/models/<name>/predict`` with 1,000-record batches, in the same run; and each
worker's peak memory.

    python bench/jobs.py [--rows 100000] [--batch 1000] [--model startup-success-lgbm]
                         [--broker redis://127.0.0.1:6379/14] [--no-write]

Starts a real `assay serve` (production mode, one process, PostgreSQL, Redis as the job
broker) and `assay worker` processes, uploads a CSV of synthetic startups (the pack's
generator, 49 fields a row), follows the job until it succeeds, and appends the table to
bench/RESULTS.md under "## Batch jobs" (with the machine and the exact command).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from run import RESULTS, _create_postgres, _drop_postgres, bench_records, machine
from stack import (
    REPO,
    SERVE,
    UNTRIPPABLE_LIMIT,
    bootstrap,
    ensure_artifacts,
    free_port,
    migrate,
    server_environment,
    start_server,
)

SECTION = "## Batch jobs"
MAX_INPUT = str(1 << 30)


@dataclass
class Measured:
    case: str
    rows: int
    seconds: float
    peak_rss_mib: list[float]

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def write_csv(path: Path, rows: int) -> None:
    records = bench_records(200)
    columns = list(records[0])
    with path.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(columns)
        for index in range(rows):
            record = records[index % len(records)]
            writer.writerow(["" if record.get(c) is None else record[c] for c in columns])


def measure_predict(base: str, key: str, model: str, rows: int, batch: int) -> Measured:
    records = bench_records(200)
    body = {"records": [records[i % len(records)] for i in range(batch)]}
    with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=120) as client:
        warm = client.post(f"/v1/models/{model}/predict?explain=false", json=body)
        warm.raise_for_status()
        started = time.perf_counter()
        for _ in range(rows // batch):
            client.post(f"/v1/models/{model}/predict?explain=false", json=body).raise_for_status()
        seconds = time.perf_counter() - started
    return Measured(f"POST /predict, {batch:,}-record batches, one client", rows, seconds, [])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_workers(env: dict[str, str], count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for number in range(count):
            path = logs / f"worker-{count}-{number}.log"
            with path.open("wb") as log:
                workers.append(
                    subprocess.Popen(
                        [*SERVE, "worker", "--concurrency", "2"],
                        env={**env, "ASSAY_LOG_LEVEL": "INFO"},
                        cwd=REPO,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            wait_ready(path)
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def wait_ready(path: Path) -> None:
    """Until the worker's log says it is ready (it migrates nothing: the server did)."""
    for _ in range(600):
        if "worker_ready" in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"worker did not start; see {path}")


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def measure_job(
    base: str,
    key: str,
    model: str,
    csv_path: Path,
    rows: int,
    env: dict[str, str],
    count: int,
    logs: Path,
) -> Measured:
    workers = start_workers(env, count, logs)
    try:
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=600) as client:
            started = time.perf_counter()
            with csv_path.open("rb") as body:
                answer = client.post(
                    "/v1/jobs",
                    data={"model": model},
                    files={"file": ("rows.csv", body, "text/csv")},
                )
            answer.raise_for_status()
            job_id = answer.json()["id"]
            job: dict[str, Any] = {}
            while True:
                job = client.get(f"/v1/jobs/{job_id}").json()
                if job["state"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            seconds = time.perf_counter() - started
            if job["state"] != "succeeded" or job["progress"]["done"] != rows:
                raise RuntimeError(f"the job ended badly: {job}")
        peaks = [peak_rss_mib(w.pid) for w in workers]
    finally:
        stop_workers(workers)
    noun = "worker" if count == 1 else "workers"
    return Measured(f"job, {count} {noun} (concurrency 2 each)", rows, seconds, peaks)


def table(results: list[Measured], baseline: Measured) -> str:
    lines = [
        "| case | rows | seconds | rows/s | vs predict | peak RSS per worker (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in [baseline, *results]:
        peaks = ", ".join(f"{p:,.0f}" for p in m.peak_rss_mib) or "-"
        ratio = m.rows_per_second / baseline.rows_per_second
        lines.append(
            f"| {m.case} | {m.rows:,} | {m.seconds:,.1f} | {m.rows_per_second:,.0f} | "
            f"{ratio:.2f} | {peaks} |"
        )
    return "\n".join(lines)


def write_results(text: str) -> None:
    """Replace this section of RESULTS.md; the sections after it (## Lookups) are kept."""
    existing = RESULTS.read_text() if RESULTS.exists() else ""
    kept, found, after = existing.partition(f"\n{SECTION}\n")
    following = re.search(r"^## ", after, re.MULTILINE) if found else None
    rest = f"\n{after[following.start() :]}" if following else ""
    RESULTS.write_text(f"{kept.rstrip()}\n\n{SECTION}\n\n{text.rstrip()}\n{rest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--model", default="startup-success-lgbm")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    ensure_artifacts()
    database = f"assay_bench_jobs_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_postgres(database))
    try:
        with tempfile.TemporaryDirectory(prefix="assay-bench-jobs-") as tmp:
            directory = Path(tmp)
            env = server_environment(
                data_dir=directory / "data",
                database_url=f"postgresql://postgres@127.0.0.1:5432/{database}",
                port=free_port(),
                workers=1,
                extra={
                    "ASSAY_JOBS_BROKER": args.broker,
                    "ASSAY_JOBS_QUEUE": f"assay-bench-{uuid.uuid4().hex[:8]}",
                    "ASSAY_RATE_LIMIT_MANAGEMENT": UNTRIPPABLE_LIMIT,
                    "ASSAY_MAX_UPLOAD_BYTES": MAX_INPUT,
                    # 1,000 records of 49 fields are about 1.3 MB of JSON.
                    "ASSAY_MAX_BODY_BYTES": str(16 << 20),
                    "ASSAY_JOBS_MAX_INPUT_BYTES": MAX_INPUT,
                    "ASSAY_LOG_LEVEL": "WARNING",
                },
            )
            migrate(env)
            key = bootstrap(env)
            server = start_server(env, directory / "server.log")
            try:
                csv_path = directory / "rows.csv"
                write_csv(csv_path, args.rows)
                size_mib = csv_path.stat().st_size / (1 << 20)
                baseline = measure_predict(server.base_url, key, args.model, args.rows, args.batch)
                print(f"bench: predict {baseline.rows_per_second:,.0f} rows/s", flush=True)
                results = []
                for count in (1, 2):
                    measured = measure_job(
                        server.base_url, key, args.model, csv_path, args.rows, env, count, directory
                    )
                    print(
                        f"bench: {measured.case}: {measured.rows_per_second:,.0f} rows/s",
                        flush=True,
                    )
                    results.append(measured)
            finally:
                server.stop()
    finally:
        asyncio.run(_drop_postgres(database))
    info = machine()
    command = shlex.join(["python", "bench/jobs.py", *sys.argv[1:]])
    text = f"""Written by `bench/jobs.py` ({datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}).

Command:

```
{command}
```

Machine: {info["cpu"]}, {info["memory"]} RAM, {info["os"]}, Python {info["python"]}.

Setup: `assay serve` (production mode, one process) and `assay worker` processes sharing
PostgreSQL, the data directory and Redis as the job broker; model `{args.model}`; a
{args.rows:,}-row CSV ({size_mib:,.0f} MiB) of synthetic startups, 49 fields a row. A job's
time runs from the start of the upload until the job is seen succeeded (polled every
0.1 s): upload, scan, scoring, checkpoints, result files and one prediction record per
row, all included. Predict: the same rows in {args.batch:,}-record requests, one after
another from one client, to the same server, in the same run. Peak RSS is each worker's
VmHWM at the end of its job.

{table(results, baseline)}
"""
    print(text)
    if not args.no_write:
        write_results(text)
        print(f"bench: wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
