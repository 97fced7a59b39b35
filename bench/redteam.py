"""Red-team scans: attempts per second against a mock target that answers 50 ms late, at
several scan concurrencies, with the server's CPU time per attempt, in one run.

    python bench/redteam.py [--concurrency 1,4,16] [--latency-ms 50] [--transforms 3]
                            [--no-write]

Everything stays on loopback. Starts `assay mock-target --latency-ms 50` (FAKE AI models;
the vulnerable one is scanned, so every detector has answers to judge and hits to record)
and an `assay serve` process (development mode: production refuses plain-http targets
and the mock speaks http; SQLite in a temporary data directory; jobs run in the server,
no broker). The organisation and its API key come from `assay demo` (which imports the
red-team pack's detectors); the target is registered with a rate limit and concurrency
the scans never reach. Each row is one scan of every shipped probe, plain and with each
transform, at the row's concurrency: attempts/s is the attempts over the scan's job
(created to finished, as the API reports them); "of ideal" compares it with concurrency /
latency, what a scan could do if Assay took no time at all. Server CPU ms/attempt is
utime + stime of the server's processes over the scan (it includes the detectors: seven
rules models, through the predict service), divided by its attempts.

Prints a markdown table and writes it to bench/RESULTS.md under "## Red-team scans".
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from run import RESULTS, machine
from stack import REPO, SERVE, UNTRIPPABLE_LIMIT, free_port, server_environment, start_server

from lookups import cpu_seconds, log_problems, machine_busy_seconds

SECTION = "## Red-team scans"
TRANSFORMS = ("base64", "leetspeak", "roleplay")


def start_mock(latency_ms: float, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [*SERVE, "mock-target", "--port", str(port), "--latency-ms", f"{latency_ms:g}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/_mock/requests", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)  # polling a starting server
    process.kill()
    raise RuntimeError(f"the mock target did not start; see {log_path}")


def demo_key(env: dict[str, str]) -> str:
    """`assay demo` (the organisation, the red-team pack's detectors); its API key."""
    made = subprocess.run(
        [*SERVE, "demo"], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    found = re.search(r"API key \(shown once\): (\S+)", made.stdout)
    if made.returncode != 0 or found is None:
        raise RuntimeError(f"assay demo failed:\n{made.stdout}\n{made.stderr}")
    return found.group(1)


def write_results(text: str) -> None:
    """Replace this section of RESULTS.md (or append it), keeping every other section."""
    existing = RESULTS.read_text() if RESULTS.exists() else ""
    before, found, after = existing.partition(f"\n{SECTION}\n")
    following = re.search(r"^## ", after, re.M) if found else None
    body = f"{before.rstrip()}\n\n{SECTION}\n\n{text.rstrip()}\n"
    if following:
        body += f"\n{after[following.start() :]}"
    RESULTS.write_text(body)


def register_target(env: dict[str, str], base: str) -> None:
    """The target, written through Assay's own registry (the API key `assay demo` makes
    may scan, not manage targets)."""
    script = f"""
import asyncio
from assay.audit.service import CLI
from assay.auth.deps import IdentityContext
from assay.core.cache import create_cache
from assay.core.db import Database
from assay.core.principal import platform_in
from assay.core.secrets_store import with_generated_secrets
from assay.orgs.service import find_organisation
from assay.settings import load_settings
from assay.targets.client import TargetClient
from assay.targets.schemas import TargetSave
from assay.targets.service import TargetRegistry

async def main():
    settings = with_generated_secrets(load_settings())
    database = Database(settings)
    identity = IdentityContext.build(settings, database, create_cache(settings))
    registry = TargetRegistry(identity.keyring, TargetClient.for_registration(settings))
    async with database.sessionmaker() as db:
        org = await find_organisation(db, "demo")
        body = TargetSave(kind="openai_chat", url={base + "/vulnerable/v1/chat/completions"!r},
                          model="bench", system_prompt="You are the bench's assistant.",
                          requests_per_minute=6000, concurrency=32, timeout_seconds=30)
        await registry.save(db, platform_in(org.id), "bench", body, meta=CLI)
        await registry.set_credential(db, platform_in(org.id), "bench", "bench-key", meta=CLI)
        await db.commit()
    await database.dispose()

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"registering the target failed:\n{done.stderr[-3000:]}")


def _when(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def scan_once(
    base: str, key: str, server_pid: int, mock_pid: int, concurrency: int, transforms: list[str]
) -> dict[str, Any]:
    headers = {"x-api-key": key}
    client_cpu, busy = time.process_time(), machine_busy_seconds()
    server_cpu, mock_cpu = cpu_seconds(server_pid), cpu_seconds(mock_pid)
    body = {"target": "bench", "transforms": transforms, "concurrency": concurrency}
    started = httpx.post(f"{base}/v1/scans", json=body, headers=headers, timeout=30)
    started.raise_for_status()
    scan_id = started.json()["id"]
    scan: dict[str, Any] = {}
    for _ in range(60_000):
        scan = httpx.get(f"{base}/v1/scans/{scan_id}", headers=headers, timeout=30).json()
        if scan["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)  # polling the scan from the bench, outside any measurement
    if scan["state"] != "succeeded":
        raise RuntimeError(f"the scan did not succeed: {scan}")
    server = cpu_seconds(server_pid) - server_cpu
    mock = cpu_seconds(mock_pid) - mock_cpu
    client = time.process_time() - client_cpu
    other = machine_busy_seconds() - busy - server - mock - client
    seconds = _when(scan["finished_at"]) - _when(scan["created_at"])
    attempts = scan["total"]
    return {
        "concurrency": concurrency,
        "attempts": attempts,
        "hits": scan["hits"],
        "seconds": seconds,
        "per_second": attempts / seconds,
        "server_cpu_ms": server * 1000 / attempts,
        "mock_cpu_ms": mock * 1000 / attempts,
        "other_cores": max(0.0, other / seconds),
    }


def table(rows: list[dict[str, Any]], latency_ms: float) -> str:
    lines = [
        "| concurrency | attempts | hits | seconds | attempts/s | of ideal | server CPU ms/attempt "
        "| mock CPU ms/attempt | other programs (CPUs) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ideal = row["concurrency"] / (latency_ms / 1000)
        lines.append(
            f"| {row['concurrency']} | {row['attempts']} | {row['hits']} | {row['seconds']:.2f} "
            f"| {row['per_second']:.1f} | {row['per_second'] / ideal:.2f} "
            f"| {row['server_cpu_ms']:.2f} | {row['mock_cpu_ms']:.2f} | {row['other_cores']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--transforms", type=int, default=3, choices=range(4))
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    levels = [int(v) for v in args.concurrency.split(",")]
    transforms = list(TRANSFORMS[: args.transforms])
    with tempfile.TemporaryDirectory(prefix="assay-bench-redteam-") as tmp:
        directory = Path(tmp)
        mock, base_mock = start_mock(args.latency_ms, directory / "mock.log")
        try:
            env = server_environment(
                data_dir=directory / "data",
                database_url=f"sqlite:///{directory / 'data' / 'assay.db'}",
                port=free_port(),
                workers=1,
                extra={
                    # Production refuses plain-http targets; the mock speaks http.
                    "ASSAY_ENV": "development",
                    "ASSAY_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/32",
                    "ASSAY_RATE_LIMIT_MANAGEMENT": UNTRIPPABLE_LIMIT,
                    "ASSAY_RATE_LIMIT_DEFAULT": UNTRIPPABLE_LIMIT,
                    "ASSAY_LOG_FORMAT": "json",
                },
            )
            (directory / "data").mkdir()
            key = demo_key(env)
            register_target(env, base_mock)
            server = start_server(env, directory / "server.log")
            try:
                # A first, small scan warms the detectors and the connection pools.
                scan_once(server.base_url, key, server.process.pid, mock.pid, 4, [])
                rows = [
                    scan_once(server.base_url, key, server.process.pid, mock.pid, c, transforms)
                    for c in levels
                ]
            finally:
                server.stop()
            logged = log_problems(directory / "server.log")
        finally:
            mock.terminate()
            mock.wait(timeout=15)
    command = "python bench/redteam.py " + shlex.join(sys.argv[1:])
    info = machine()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""Command: `{command.strip()}` ({when}).

Machine: {info["cpu"]}, {info["memory"]} RAM, {info["os"]}, Python {info["python"]}.

Setup: `assay mock-target --latency-ms {args.latency_ms:g}` (the FAKE vulnerable model,
every answer {args.latency_ms:g} ms late) and `assay serve` (1 process, SQLite,
development mode, jobs in the server), on loopback only. Each row is one scan of every
shipped probe, plain and with {", ".join(transforms) or "no transform"}, at that
concurrency. "of ideal": attempts/s over concurrency / latency. Server CPU ms/attempt
includes sending, the seven detector models through the predict service, sealing the
answer and two short transactions (budget, attempt). "other programs": CPUs' worth of
time everything else on the machine used during the scan.

{table(rows, args.latency_ms)}

Warnings and errors in the server log during the run: {logged}."""
    print(text)
    if not args.no_write:
        write_results(text)
        print("bench: wrote bench/RESULTS.md")


if __name__ == "__main__":
    main()
