"""Threat-intelligence lookups: lookups/s, latency and server CPU time per lookup, for
misses (``force_refresh``: every provider is called) and cache hits, in one run.

    python bench/lookups.py [--concurrency 1,8,32] [--seconds 10] [--warmup 2]
                            [--latency-ms 50] [--indicator 185.220.101.34] [--workers 1]
                            [--no-write]

Everything stays on loopback. Starts `assay mock-providers --latency-ms 50` (offline
stand-ins of VirusTotal, AbuseIPDB and URLhaus, each answer 50 ms late) and an
`assay serve` process (development mode: production refuses plain-http providers, and the
mock speaks http; SQLite in a temporary data directory) whose built-in providers point at
the mock (ASSAY_PROVIDER_BASE_URLS, ASSAY_OUTBOUND_ALLOWED_NETWORKS=127.0.0.1/32). The
organisation is made by `assay demo`; `assay providers import` then replaces the three
built-in definitions with the same documents minus `rate_limit` (the shipped VirusTotal
quota is 4/minute: a bench would measure refusals, not calls). Load: asyncio + httpx in
this process, keep-alive, one request in flight per connection, a warm-up before each
window. Server CPU time per lookup is utime + stime of the server's processes
(/proc/<pid>/stat) over each window, divided by the lookups answered in it.

Prints a markdown table and writes it to bench/RESULTS.md under "## Lookups" (with the
machine and the exact command).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from run import RESULTS, machine
from stack import REPO, SERVE, UNTRIPPABLE_LIMIT, free_port, server_environment, start_server

SECTION = "## Lookups"
PROVIDERS = ("virustotal", "abuseipdb", "urlhaus")
# What a miss must show for each provider: it was called, and it answered.
ANSWERED = ("ok", "no_data")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- processes ---------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and every process under it (uvicorn workers), in seconds."""
    tree = _children()
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        pending.extend(tree.get(current, []))
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state is field 3, utime field 14 and stime field 15.
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time all processes of the machine used since boot (every CPU, idle excluded)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user).
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


@dataclass
class MockProviders:
    process: subprocess.Popen[bytes]
    root: str
    base_urls: dict[str, str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def reset(self) -> None:
        httpx.post(f"{self.root}/_mock/reset", timeout=5).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.root}/_mock/requests", timeout=5)
        answer.raise_for_status()
        body = answer.json()
        entries: list[dict[str, Any]] = body["requests"] if isinstance(body, dict) else body
        return entries


def start_mock(env: dict[str, str], latency_ms: float, log_path: Path) -> MockProviders:
    """`assay mock-providers` on a free loopback port; the base URLs it prints."""
    port = free_port()
    command = [
        *SERVE,
        "mock-providers",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    mock = MockProviders(process, f"http://127.0.0.1:{port}", {})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the mock providers exited; see {log_path}")
        printed = dict(re.findall(r"^\s+(\w+)\s+(http://\S+)$", log_path.read_text(), re.M))
        if all(name in printed for name in PROVIDERS):
            try:
                mock.requests()
            except httpx.TransportError:
                pass
            else:
                mock.base_urls = {name: printed[name] for name in PROVIDERS}
                return mock
        time.sleep(0.2)
    mock.stop()
    raise RuntimeError(f"the mock providers did not start; see {log_path}")


def prepare_organisation(env: dict[str, str], directory: Path) -> str:
    """`assay demo`, then the built-in providers again without their quotas; the API key."""
    made = subprocess.run(
        [*SERVE, "demo"], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        raise RuntimeError(f"assay demo failed:\n{made.stdout}\n{made.stderr}")
    found = re.search(r"API key \(shown once\): (\S+)", made.stdout)
    if found is None:
        raise RuntimeError(f"assay demo printed no API key:\n{made.stdout}")
    files = []
    for name in PROVIDERS:
        document = builtin_without_quota(name)
        path = directory / f"{name}.json"
        path.write_text(json.dumps(document))
        files.append(str(path))
    imported = subprocess.run(
        [*SERVE, "providers", "import", "--org", "demo", *files],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if imported.returncode != 0:
        raise RuntimeError(f"assay providers import failed:\n{imported.stdout}\n{imported.stderr}")
    return found.group(1)


def builtin_without_quota(name: str) -> dict[str, Any]:
    from assay.providers.service import builtin_definition

    document = dict(builtin_definition(name))
    document.pop("rate_limit", None)
    return document


# --- load --------------------------------------------------------------------------------


@dataclass
class Window:
    case: str
    concurrency: int
    seconds: float
    latencies: list[float]
    errors: int
    cpu_seconds: float
    mock_cpu_seconds: float
    client_cpu_seconds: float
    # CPU time of everything else on the machine during the window (other programs).
    other_cpu_seconds: float
    # The lookup's own duration_ms (the server's providers and verdict, before its record).
    durations_ms: list[float] = field(default_factory=list)
    # Per provider, the latency_ms the server reported for each answered call.
    provider_ms: dict[str, list[float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def lookups(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.lookups / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000

    @property
    def duration_p50(self) -> float:
        return statistics.median(self.durations_ms) if self.durations_ms else float("nan")

    @property
    def cpu_ms_per_lookup(self) -> float:
        return self.cpu_seconds / max(1, self.lookups) * 1000

    @property
    def mock_cpu_ms_per_lookup(self) -> float:
        return self.mock_cpu_seconds / max(1, self.lookups) * 1000

    @property
    def other_cores(self) -> float:
        return max(0.0, self.other_cpu_seconds / self.seconds)

    @property
    def client_cpu_ms_per_lookup(self) -> float:
        return self.client_cpu_seconds / max(1, self.lookups) * 1000


def check_lookup(body: dict[str, Any], *, miss: bool) -> str | None:
    """Why this answer is not what the case measures (every provider called, or every
    provider served from the cache), or None."""
    results = {r["provider"]: r for r in body.get("results", [])}
    if set(results) != set(PROVIDERS):
        return f"providers {sorted(results)}"
    for name, result in results.items():
        if miss and (result["cached"] or result["status"] not in ANSWERED):
            return f"{name}: {result['status']} cached={result['cached']} {result['detail']}"
        if not miss and not result["cached"]:
            return f"{name}: not from the cache ({result['status']})"
    return None


async def drive(
    base_url: str,
    key: str,
    body: dict[str, Any],
    *,
    miss: bool,
    concurrency: int,
    seconds: float,
    warmup: float,
    server_pid: int,
    mock_pid: int,
    case: str,
) -> Window:
    headers = {"x-api-key": key}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    provider_ms: dict[str, list[float]] = {name: [] for name in PROVIDERS}
    problems: list[str] = []
    durations: list[float] = []
    errors = 0
    measuring = False

    async def loop(http: httpx.AsyncClient, until: float) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            started = time.perf_counter()
            try:
                answer = await http.post("/v1/lookups", json=body, headers=headers)
            except httpx.HTTPError as exc:
                if measuring:
                    errors += 1
                    problems.append(type(exc).__name__)
                continue
            elapsed = time.perf_counter() - started
            if not measuring:
                continue
            if answer.status_code != 200:
                errors += 1
                problems.append(f"{answer.status_code} {answer.text[:200]}")
                continue
            lookup = answer.json()
            problem = check_lookup(lookup, miss=miss)
            if problem is not None:
                errors += 1
                problems.append(problem)
                continue
            latencies.append(elapsed)
            durations.append(lookup["duration_ms"])
            for result in lookup["results"]:
                provider_ms[result["provider"]].append(result["latency_ms"])

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as http:
        await asyncio.gather(
            *(loop(http, time.perf_counter() + warmup) for _ in range(concurrency))
        )
        measuring = True
        cpu_before, mock_before = cpu_seconds(server_pid), cpu_seconds(mock_pid)
        client_before, busy_before = time.process_time(), machine_busy_seconds()
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(loop(http, until) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu_after, mock_after = cpu_seconds(server_pid), cpu_seconds(mock_pid)
        client_after, busy_after = time.process_time(), machine_busy_seconds()
    return Window(
        case,
        concurrency,
        elapsed,
        latencies,
        errors,
        cpu_after - cpu_before,
        mock_after - mock_before,
        client_after - client_before,
        (busy_after - busy_before)
        - (cpu_after - cpu_before)
        - (mock_after - mock_before)
        - (client_after - client_before),
        durations,
        provider_ms,
        problems,
    )


def one_lookup(base_url: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{base_url}/v1/lookups", json=body, headers={"x-api-key": key}, timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"/v1/lookups answered {answer.status_code}: {answer.text[:500]}")
    lookup: dict[str, Any] = answer.json()
    return lookup


# --- report ------------------------------------------------------------------------------


def table(windows: list[Window]) -> str:
    lines = [
        "| case | concurrency | lookups | lookups/s | p50 ms | p99 ms | in-server p50 ms "
        "| errors | server CPU ms/lookup | mock CPU ms/lookup | client CPU ms/lookup "
        "| other programs (CPUs) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w in windows:
        lines.append(
            f"| {w.case} | {w.concurrency} | {w.lookups:,} | {w.per_second:,.1f} | "
            f"{w.percentile(0.5):.1f} | {w.percentile(0.99):.1f} | {w.duration_p50:.1f} | "
            f"{w.errors} | {w.cpu_ms_per_lookup:.2f} | {w.mock_cpu_ms_per_lookup:.2f} | "
            f"{w.client_cpu_ms_per_lookup:.2f} | {w.other_cores:.2f} |"
        )
    return "\n".join(lines)


def ratios(misses: list[Window], hits: list[Window]) -> str:
    lines = [
        "| concurrency | miss lookups/s | hit lookups/s | hit / miss |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for miss, hit in zip(misses, hits, strict=True):
        lines.append(
            f"| {miss.concurrency} | {miss.per_second:,.1f} | {hit.per_second:,.1f} | "
            f"{hit.per_second / miss.per_second:.1f} |"
        )
    return "\n".join(lines)


def concurrency_proof(window: Window, latency_ms: float) -> str:
    median = window.percentile(0.5)
    per_provider = {name: statistics.median(ms) for name, ms in window.provider_ms.items() if ms}
    slowest = max(per_provider.values())
    total = sum(per_provider.values())
    shown = ", ".join(f"{name} {ms:.1f} ms" for name, ms in per_provider.items())
    parallel = median < latency_ms + (len(PROVIDERS) - 1) * latency_ms / 2
    verdict = (
        "the providers are asked concurrently: the lookup takes about as long as the "
        "slowest provider, not the sum"
        if parallel
        else "NOT concurrent: the lookup takes about the sum of the providers' latencies"
    )
    return (
        f"Median miss at concurrency 1: **{median:.1f} ms**, against {latency_ms:.0f} ms "
        f"(one provider's added latency) and {len(PROVIDERS) * latency_ms:.0f} ms (the "
        f"{len(PROVIDERS)} providers one after another). The server's own median per provider "
        f"call: {shown}; slowest {slowest:.1f} ms, sum {total:.1f} ms. So {verdict}; the "
        f"{median - slowest:.1f} ms above the slowest call is Assay's own work (authentication, "
        "the verdict model, the lookup's record) and the client."
    )


def shared(windows: list[Window]) -> str:
    """A warning when other programs used the machine during a row, else nothing."""
    busiest = max(w.other_cores for w in windows)
    if busiest < 0.1:
        return ""
    return (
        f"\n**This run shared the machine**: other programs used up to {busiest:.2f} CPUs "
        "during a row (last column), so throughput is understated and tails are longer "
        "than on a quiet machine.\n"
    )


def write_results(text: str) -> None:
    """Replace this section of RESULTS.md (or append it), keeping every other section."""
    existing = RESULTS.read_text() if RESULTS.exists() else ""
    before, found, after = existing.partition(f"\n{SECTION}\n")
    rest = ""
    if found:
        following = re.search(r"^## ", after, re.M)
        rest = after[following.start() :] if following else ""
    body = f"{before.rstrip()}\n\n{SECTION}\n\n{text.rstrip()}\n"
    if rest:
        body += f"\n{rest}"
    RESULTS.write_text(body)


@contextmanager
def running(
    args: argparse.Namespace, directory: Path
) -> Iterator[tuple[str, str, int, MockProviders]]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    mock = start_mock(
        {**base_env, "PYTHONUNBUFFERED": "1"}, args.latency_ms, directory / "mock.log"
    )
    try:
        port = free_port()
        env = server_environment(
            data_dir=directory / "data",
            database_url=f"sqlite:///{directory / 'data' / 'assay.db'}",
            port=port,
            workers=args.workers,
            extra={
                # Production refuses plain-http providers; the mock speaks http.
                "ASSAY_ENV": "development",
                "ASSAY_PROVIDER_BASE_URLS": json.dumps(mock.base_urls),
                "ASSAY_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/32",
                "ASSAY_RATE_LIMIT_MANAGEMENT": UNTRIPPABLE_LIMIT,
                "ASSAY_RATE_LIMIT_DEFAULT": UNTRIPPABLE_LIMIT,
                "ASSAY_LOG_FORMAT": "json",
            },
        )
        (directory / "data").mkdir()
        key = prepare_organisation(env, directory)
        server = start_server(env, directory / "server.log")
        try:
            yield server.base_url, key, server.process.pid, mock
        finally:
            server.stop()
    finally:
        mock.stop()


def log_problems(path: Path) -> list[str]:
    """The server log's warnings and errors (JSON lines), most frequent first."""
    counts: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "Traceback" in line or "ERROR" in line:
                counts[line[:120]] = counts.get(line[:120], 0) + 1
            continue
        if isinstance(entry, dict) and str(entry.get("level", "")).lower() in (
            "warning",
            "error",
            "critical",
        ):
            name = f"{entry.get('level')}: {entry.get('event')}"
            counts[name] = counts.get(name, 0) + 1
    return [f"{n} x {name}" for name, n in sorted(counts.items(), key=lambda item: -item[1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per window")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured, before each")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the mock's latency")
    parser.add_argument("--indicator", default="185.220.101.34", help="asked of all three")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    miss_body = {"indicator": args.indicator, "force_refresh": True}
    hit_body = {"indicator": args.indicator}
    with tempfile.TemporaryDirectory(prefix="assay-bench-lookups-") as tmp:
        directory = Path(tmp)
        with running(args, directory) as (base_url, key, server_pid, mock):
            # One miss first: it must reach each provider exactly once, and succeed.
            mock.reset()
            first = one_lookup(base_url, key, miss_body)
            problem = check_lookup(first, miss=True)
            asked = sorted(r["provider"] for r in mock.requests())
            if problem is not None or asked != sorted(PROVIDERS):
                raise RuntimeError(f"a miss is not what it should be: {problem}; mock saw {asked}")
            print(f"bench: a miss: verdict {first['verdict']}, {first['duration_ms']:.1f} ms")
            misses: list[Window] = []
            hits: list[Window] = []
            for miss, body, windows in ((True, miss_body, misses), (False, hit_body, hits)):
                for level in levels:
                    case = "miss (force_refresh)" if miss else "cache hit"
                    window = asyncio.run(
                        drive(
                            base_url,
                            key,
                            body,
                            miss=miss,
                            concurrency=level,
                            seconds=args.seconds,
                            warmup=args.warmup,
                            server_pid=server_pid,
                            mock_pid=mock.process.pid,
                            case=case,
                        )
                    )
                    print(
                        f"bench: {case}, {level}: {window.per_second:,.1f}/s, "
                        f"p50 {window.percentile(0.5):.1f} ms, errors {window.errors}",
                        flush=True,
                    )
                    for problem in sorted(set(window.problems))[:5]:
                        print(f"bench:   {problem}")
                    windows.append(window)
        problems = log_problems(directory / "server.log")
        mock_log = (directory / "mock.log").read_text(errors="replace")
    for line in problems[:20]:
        print(f"bench: server log: {line}")
    if "Traceback" in mock_log:
        print("bench: the mock providers' log has a traceback")
    at_one = next((w for w in misses if w.concurrency == 1), misses[0])
    info = machine()
    command = shlex.join(["python", "bench/lookups.py", *sys.argv[1:]])
    logged = "; ".join(problems[:10]) if problems else "none"
    text = f"""Written by `bench/lookups.py` ({datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}).

Command:

```
{command}
```

Machine: {info["cpu"]}, {info["memory"]} RAM, {info["os"]}, Python {info["python"]}.

Setup: `assay mock-providers --latency-ms {args.latency_ms:g}` (VirusTotal, AbuseIPDB and
URLhaus stand-ins; every answer {args.latency_ms:g} ms late) and `assay serve`
({args.workers} worker process(es), SQLite, development mode: production refuses
plain-http providers and the mock speaks http; otherwise the same guards as production:
API keys, trusted hosts, rate limits, request logging), on loopback only. The
organisation is `assay demo`'s, with the threat-intelligence pack; its three built-in
providers are then replaced (`assay providers import`) by the shipped
definitions **without `rate_limit`**: VirusTotal's is 4/minute;500/day and AbuseIPDB's
1000/day, the public APIs' quotas, so a bench with them would measure quota refusals
(`rate_limited`, no call), not calls. Assay's own rate limits are raised to
{UNTRIPPABLE_LIMIT} (they still run on every request). Indicator `{args.indicator}`: an
IP address, which all three providers answer. A miss is `force_refresh: true` (every
provider called; each answer must be `ok` or `no_data`, not cached); a hit repeats the
same indicator without it (each answer must come from the cache); any other answer counts
as an error. Load: asyncio + httpx in the bench process (it shares the machine's
{os.cpu_count()} CPUs with the server and the mock), keep-alive, one request in flight per
connection, {args.warmup:g} s of warm-up then {args.seconds:g} s measured per row.
p50/p99: as the client sees a lookup; in-server p50: the lookup's own `duration_ms` (its
providers and verdict, until before its record is written). CPU ms/lookup: utime + stime
over the row's window (/proc/<pid>/stat for the server and the mock, with any child
processes; this process's CPU time for the client), divided by the lookups answered in it.
"other programs": CPUs' worth of time everything else on the machine used during the row
(/proc/stat busy time minus the three above); above 0.1 the row shared the machine.

{table(misses + hits)}

Cache hits against misses (throughput):

{ratios(misses, hits)}

{concurrency_proof(at_one, args.latency_ms)}

Warnings and errors in the server log during the run: {logged}.
{shared(misses + hits)}"""
    print(text)
    if not args.no_write:
        write_results(text)
        print(f"bench: wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
