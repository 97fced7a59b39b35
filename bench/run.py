"""Single-record predict throughput and latency through Assay, against the model in process.

    python bench/run.py [--seconds 10] [--database sqlite|postgresql] [--workers 2]
                        [--peer mlserver|none]

Starts a real `assay serve` process (production mode, every guard on: see stack.py),
registers the startup-success pack's ONNX and LightGBM models, and drives
``POST /v1/models/<name>/predict?explain=false`` with one record per request from a
load generator in its own process (wrk, else a small httpx script), over loopback,
at 1, 16 and 64 concurrent connections. The baseline is the same model called directly
in this process by as many threads, measured in the same run. With `--peer mlserver`
(the default) the best peer we know, MLServer with adaptive batching, serves the same
LightGBM model in the same run (see peers.py). Prints a table with the ratios and writes
bench/RESULTS.md (with the machine and the exact command).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shlex
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from baseline import measure, runtime_calls, scorer_calls
from loadgen import LoadResult, run_load, wrk_available
from peers import ensure_mlserver, mlserver, mlserver_bodies
from stack import (
    PACK_DIR,
    REPO,
    Server,
    bootstrap,
    check_predict,
    ensure_artifacts,
    free_port,
    migrate,
    server_environment,
    start_server,
)

ONNX_MODEL = "startup-success-logreg"
TREE_MODEL = "startup-success-lgbm"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_RPS = 3600
TARGET_P99_MS = 25.0
TARGET = (
    f"tree model, every guard on, 64 connections: >= {TARGET_RPS:,} req/s "
    f"(twice MLServer's ~1,800) with p99 < {TARGET_P99_MS:g} ms"
)


@dataclass(frozen=True)
class Case:
    """One measured server run."""

    title: str
    model: str
    connections: int
    path: str
    bodies: Path


@dataclass(frozen=True)
class Row:
    case: Case
    server: LoadResult
    runtime: LoadResult | None
    scorer: LoadResult | None
    mean_batch: float | None


# --- inputs ------------------------------------------------------------------------------


def bench_records(count: int = 200) -> list[dict[str, Any]]:
    sys.path.insert(0, str(PACK_DIR))
    from synthetic_startups import generate_companies

    companies, _ = generate_companies(count, seed=11)
    # A PII field on every record, so sealing it is part of what is measured.
    return [{**c, "founder_email": f"founder{i}@example.org"} for i, c in enumerate(companies)]


def oip_body(record: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    datatypes = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES"}
    return {
        "inputs": [
            {"name": name, "datatype": datatypes[types[name]], "shape": [1], "data": [value]}
            for name, value in record.items()
        ]
    }


def write_bodies(directory: Path, records: list[dict[str, Any]]) -> tuple[Path, Path]:
    from assay.engine.pack import load_pack

    types = {f.name: f.type for f in load_pack(PACK_DIR).models[0].schema.definition.fields}
    native = directory / "native.jsonl"
    native.write_text("".join(json.dumps({"record": r}) + "\n" for r in records))
    oip = directory / "oip.jsonl"
    oip.write_text("".join(json.dumps(oip_body(r, types)) + "\n" for r in records))
    return native, oip


# --- database ----------------------------------------------------------------------------


async def _create_postgres(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_postgres(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- measuring ---------------------------------------------------------------------------


def batch_counts(server: Server, api_key: str) -> tuple[float, float] | None:
    """(model calls, records) from the micro-batcher's histogram (one worker's view)."""
    try:
        text = httpx.get(
            f"{server.base_url}/metrics", headers={"x-api-key": api_key}, timeout=10
        ).text
    except httpx.HTTPError:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("assay_predict_batch_size_count", "assay_predict_batch_size_sum"):
            if line.startswith(name + " "):
                values[name] = float(line.split()[1])
    if len(values) != 2:
        return None
    return values["assay_predict_batch_size_count"], values["assay_predict_batch_size_sum"]


def run_case(
    case: Case, server: Server, api_key: str, *, seconds: float, warmup: float
) -> tuple[LoadResult, float | None]:
    url = server.base_url + case.path
    if warmup > 0:
        run_load(
            url, connections=case.connections, seconds=warmup, bodies=case.bodies, api_key=api_key
        )
    before = batch_counts(server, api_key)
    result = run_load(
        url, connections=case.connections, seconds=seconds, bodies=case.bodies, api_key=api_key
    )
    after = batch_counts(server, api_key)
    mean_batch = None
    if before and after and after[0] > before[0]:
        mean_batch = (after[1] - before[1]) / (after[0] - before[0])
    return result, mean_batch


def profile_server(server: Server, seconds: float, output: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on the server process while a case runs (needs `pip install py-spy`)."""
    import shutil

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("bench: py-spy is not installed; no profile")
        return None
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(server.process.pid),
            "--duration",
            f"{int(seconds)}",
            "--rate",
            "250",
            "--format",
            {".svg": "flamegraph", ".json": "speedscope"}.get(output.suffix, "raw"),
            "--output",
            str(output),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


# --- report ------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import os

    packages = (
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "pydantic",
        "sqlalchemy",
        "onnxruntime",
        "lightgbm",
        "numpy",
    )
    return {
        "cpu": f"{cpu} x {os.cpu_count()} logical CPUs",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(f"{p} {_version(p)}" for p in packages),
    }


def _version(package: str) -> str:
    try:
        return version(package)
    except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
        return "-"


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "-"


def table(rows: list[Row]) -> str:
    lines = [
        "| case | conns | req/s | p50 ms | p99 ms | errors | mean batch | runtime req/s "
        "(p50/p99 ms) | Assay / runtime | scorer req/s (p50/p99 ms) | Assay / scorer |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        s, r, c = row.server, row.runtime, row.scorer
        batch = f"{row.mean_batch:.1f}" if row.mean_batch is not None else "-"
        runtime = (
            f"{r.rps:,.0f} ({r.p50_ms:.3f}/{r.p99_ms:.3f}) | {_ratio(s.rps, r.rps)}"
            if r
            else "- | -"
        )
        scorer = (
            f"{c.rps:,.0f} ({c.p50_ms:.3f}/{c.p99_ms:.3f}) | {_ratio(s.rps, c.rps)}"
            if c
            else "- | -"
        )
        lines.append(
            f"| {row.case.title} | {row.case.connections} | {s.rps:,.0f} | {s.p50_ms:.2f} "
            f"| {s.p99_ms:.2f} | {s.errors} | {batch} | {runtime} | {scorer} |"
        )
    return "\n".join(lines)


def verdict(rows: list[Row], peer: LoadResult | None) -> str:
    tree = next(
        (
            r
            for r in rows
            if r.case.model == TREE_MODEL
            and r.case.connections == 64
            and r.case.path.endswith("explain=false")
        ),
        None,
    )
    if tree is None:
        return "The tree model was not run at 64 connections."
    server = tree.server
    met = server.rps >= TARGET_RPS and server.p99_ms < TARGET_P99_MS and server.errors == 0
    lines = [
        f"Target ({TARGET}): {'met' if met else 'NOT met'} - measured "
        f"{server.rps:,.0f} req/s, p99 {server.p99_ms:.2f} ms, {server.errors} errors."
    ]
    if peer is not None:
        lines.append(
            f"MLServer in this run (same model, same load generator, 64 connections): "
            f"{peer.rps:,.0f} req/s, p99 {peer.p99_ms:.2f} ms; Assay / MLServer = "
            f"{_ratio(server.rps, peer.rps)} (the target asks for 2.00)."
        )
    return "\n\n".join(lines)


def peer_table(peer: LoadResult | None) -> str:
    if peer is None:
        return "No peer was run (`--peer none`)."
    return (
        "| peer | conns | req/s | p50 ms | p99 ms | errors |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n"
        f"| MLServer {_version_of_peer()}, LightGBM, adaptive batching "
        f"(max 64, 2 ms) | {peer.connections} | {peer.rps:,.0f} | {peer.p50_ms:.2f} "
        f"| {peer.p99_ms:.2f} | {peer.errors} |"
    )


def _version_of_peer() -> str:
    from peers import MLSERVER_VENV

    found = sorted((MLSERVER_VENV / "lib").glob("python*/site-packages/mlserver-*.dist-info"))
    return found[-1].name.removeprefix("mlserver-").removesuffix(".dist-info") if found else ""


def write_results(
    rows: list[Row],
    peer: LoadResult | None,
    args: argparse.Namespace,
    command: str,
    tool: str,
) -> None:
    info = machine()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""# Benchmark results

Written by `bench/run.py` ({stamp}). Do not edit by hand: run it again.

Command:

```
{command}
```

Machine: {info["cpu"]}, {info["memory"]} RAM, {info["os"]}, Python {info["python"]}.
Packages: {info["packages"]}.

Setup: `assay serve` in production mode with {args.workers} worker(s) on {args.database},
every guard on (API key, trusted hosts, security headers, CORS, body and JSON limits,
rate limits at {"100000000/minute"} so they run but never refuse, request logging at
info as JSON to a file, prediction records buffered to the database with the PII field
sealed). Load: {tool}, one thread, keep-alive connections, loopback, {args.seconds:g} s
per case after {args.warmup:g} s of warm-up, a rotation of 200 synthetic records with
49 fields each. Requests: `POST /v1/models/<model>/predict?explain=false` with one
record (OIP rows: `POST /v2/models/<model>/infer`, one tensor per field). Baselines,
measured in the same run with as many threads as connections: the runtime's own predict
on a ready 1-row matrix, and Assay's `Scorer.score_batch` on one record.

{table(rows)}

The peer, measured in the same run with the same load generator and records (MLServer
gets each record's 46 vectorised features as one FP64 tensor: it validates nothing and
has no authentication, rate limits, records or logs):

{peer_table(peer)}

{verdict(rows, peer)}

"mean batch" is records per model call made by the micro-batcher during the case
(from `assay_predict_batch_size`; with several workers, one worker's view).
See docs/performance.md for what these numbers mean and where the time goes.
"""
    # bench/jobs.py's section follows; it is kept as it is.
    existing = RESULTS.read_text() if RESULTS.exists() else ""
    jobs_section = existing.partition("\n## Batch jobs\n")
    if jobs_section[1]:
        text = text.rstrip("\n") + "\n" + jobs_section[1] + jobs_section[2]
    RESULTS.write_text(text)


# --- main --------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured time before each")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--workers", type=int, default=2, help="server worker processes (one per core)"
    )
    parser.add_argument(
        "--peer",
        choices=("mlserver", "none"),
        default="mlserver",
        help="also measure MLServer serving the same LightGBM model (installed into "
        "bench/.peers on first use)",
    )
    parser.add_argument("--levels", default="1,16,64", help="connections for the ONNX model")
    parser.add_argument("--tree-levels", default="64", help="connections for the LightGBM model")
    parser.add_argument(
        "--extras",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the tree model with explanations and through OIP at 64",
    )
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write a py-spy profile of the tree model at 64 "
        "(.svg, .json speedscope, else collapsed stacks)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra ASSAY_* setting for the server, e.g. --env ASSAY_BATCH_MAX_SIZE=1",
    )
    return parser.parse_args()


def cases(args: argparse.Namespace, native: Path, oip: Path) -> list[Case]:
    predict = "/v1/models/{}/predict?explain=false"
    found = [
        Case(f"ONNX ({ONNX_MODEL})", ONNX_MODEL, int(n), predict.format(ONNX_MODEL), native)
        for n in args.levels.split(",")
        if n
    ]
    found += [
        Case(f"LightGBM ({TREE_MODEL})", TREE_MODEL, int(n), predict.format(TREE_MODEL), native)
        for n in args.tree_levels.split(",")
        if n
    ]
    if args.extras:
        found += [
            Case(
                "LightGBM, with explanations (TreeSHAP)",
                TREE_MODEL,
                64,
                f"/v1/models/{TREE_MODEL}/predict",
                native,
            ),
            Case(
                "LightGBM through OIP infer", TREE_MODEL, 64, f"/v2/models/{TREE_MODEL}/infer", oip
            ),
        ]
    return found


def measure_baselines(
    all_cases: list[Case], records: list[dict[str, Any]], seconds: float
) -> dict[tuple[str, int], tuple[LoadResult, LoadResult]]:
    """(runtime, scorer) baselines per (model, connections), before the server starts."""
    from assay.engine.pack import build_pack_scorers, load_pack

    scorers = build_pack_scorers(load_pack(PACK_DIR))
    baselines: dict[tuple[str, int], tuple[LoadResult, LoadResult]] = {}
    for case in all_cases:
        key = (case.model, case.connections)
        if key in baselines:
            continue
        scorer = scorers[case.model]
        print(f"bench: baseline {case.model} x{case.connections}", flush=True)
        runtime, whole = runtime_calls(scorer, records), scorer_calls(scorer, records)
        for calls in (runtime, whole):
            measure(calls, threads=case.connections, seconds=0.5, label="warm-up")
        baselines[key] = (
            measure(runtime, threads=case.connections, seconds=seconds, label="runtime"),
            measure(whole, threads=case.connections, seconds=seconds, label="scorer"),
        )
    return baselines


def run_cases(
    args: argparse.Namespace,
    server: Server,
    api_key: str,
    all_cases: list[Case],
    baselines: dict[tuple[str, int], tuple[LoadResult, LoadResult]],
) -> list[Row]:
    rows: list[Row] = []
    for case in all_cases:
        print(f"bench: {case.title} x{case.connections} ...", flush=True)
        profiled = case.model == TREE_MODEL and case.connections == 64
        spy = None
        if args.profile and profiled and case.path.endswith("explain=false"):
            spy = profile_server(server, args.seconds + args.warmup, args.profile)
        result, mean_batch = run_case(
            case, server, api_key, seconds=args.seconds, warmup=args.warmup
        )
        if spy is not None:
            spy.wait(timeout=120)
        runtime, scorer = baselines[(case.model, case.connections)]
        rows.append(Row(case, result, runtime, scorer, mean_batch))
        batch = f"  mean batch {mean_batch:.1f}" if mean_batch else ""
        print(
            f"  {result.rps:,.0f} req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms"
            f"  errors {result.errors}  | runtime {runtime.rps:,.0f} req/s"
            f" (x{result.rps / runtime.rps:.2f})  scorer {scorer.rps:,.0f} req/s"
            f" (x{result.rps / scorer.rps:.2f}){batch}",
            flush=True,
        )
    return rows


def run_peer(
    args: argparse.Namespace, records: list[dict[str, Any]], run_dir: Path
) -> LoadResult | None:
    """MLServer with the tree model at 64 connections, after Assay has stopped."""
    if args.peer == "none":
        return None
    from assay.engine.ml_model import MLModel
    from assay.engine.pack import build_pack_scorers, load_pack
    from assay.engine.results import ValidatedRecord

    pack = load_pack(PACK_DIR)
    scorer = build_pack_scorers(pack)[TREE_MODEL]
    engine = scorer.engine
    if not isinstance(engine, MLModel):
        raise TypeError(f"{TREE_MODEL} is not an ML model")
    rows = [r for r in scorer.validate(records) if isinstance(r, ValidatedRecord)]
    matrices = [engine.vectorizer.transform([r.values])[0].tolist() for r in rows]
    bodies = mlserver_bodies(run_dir, matrices)
    executable = ensure_mlserver()
    model_file = pack.model(TREE_MODEL).artifact_path
    if model_file is None:
        raise TypeError(f"{TREE_MODEL} has no artifact")
    print("bench: MLServer (peer), LightGBM x64 ...", flush=True)
    with mlserver(executable, model_file, run_dir, free_port()) as url:
        if args.warmup > 0:
            run_load(url, connections=64, seconds=args.warmup, bodies=bodies, api_key="-")
        result = run_load(url, connections=64, seconds=args.seconds, bodies=bodies, api_key="-")
    print(
        f"  {result.rps:,.0f} req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms"
        f"  errors {result.errors}",
        flush=True,
    )
    return result


def main() -> None:
    args = parse_args()
    command = shlex.join(["python", "bench/run.py", *sys.argv[1:]])
    ensure_artifacts()
    tool = "wrk" if wrk_available() else "httpx (wrk not found)"
    run_dir = Path(tempfile.mkdtemp(prefix="assay-bench-"))
    print(f"bench: working in {run_dir}; load generator: {tool}")
    records = bench_records()
    native, oip = write_bodies(run_dir, records)
    all_cases = cases(args, native, oip)
    baselines = measure_baselines(all_cases, records, args.baseline_seconds)

    pg_name = None
    if args.database == "postgresql":
        pg_name = f"assay_bench_{uuid.uuid4().hex[:10]}"
        asyncio.run(_create_postgres(pg_name))
        database_url = f"postgresql://postgres@127.0.0.1:5432/{pg_name}"
    else:
        database_url = f"sqlite:///{run_dir / 'data' / 'assay.db'}"
    env = server_environment(
        data_dir=run_dir / "data",
        database_url=database_url,
        port=free_port(),
        workers=args.workers,
        extra=dict(item.split("=", 1) for item in args.env),
    )
    server: Server | None = None
    try:
        migrate(env)
        api_key = bootstrap(env)
        server = start_server(env, run_dir / "server.log")
        for body_file, path in ((native, "/v1/models/{}/predict"), (oip, "/v2/models/{}/infer")):
            first = body_file.read_text().splitlines()[0].encode()
            for model in (ONNX_MODEL, TREE_MODEL):
                check_predict(server, api_key, path.format(model), first)
        rows = run_cases(args, server, api_key, all_cases, baselines)
    finally:
        if server is not None:
            server.stop()
        if pg_name is not None:
            asyncio.run(_drop_postgres(pg_name))
    peer = run_peer(args, records, run_dir)
    print()
    print(table(rows))
    print()
    print(peer_table(peer))
    print()
    print(verdict(rows, peer))
    if not args.no_write:
        write_results(rows, peer, args, command, tool)
        print(f"bench: wrote {RESULTS.relative_to(REPO)}")
    print(f"bench: server log {run_dir / 'server.log'}")


if __name__ == "__main__":
    main()
