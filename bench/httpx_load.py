"""Fallback load generator when wrk is not installed: asyncio + httpx, in its own process.

    python bench/httpx_load.py URL CONNECTIONS SECONDS   (bodies and key from the environment)

Far less efficient than wrk: on a small machine it competes with the server for CPU,
so its numbers understate Assay. Prints the same BENCH_JSON summary line as post.lua.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import httpx


async def main(url: str, connections: int, seconds: float, bodies: list[bytes]) -> None:
    headers = {"content-type": "application/json", "x-api-key": os.environ["BENCH_API_KEY"]}
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def client_loop(http: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await http.post(url, content=bodies[i % len(bodies)], headers=headers)
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - started)
            i += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=10) as http:
        await asyncio.gather(*(client_loop(http, n) for n in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> int:
        return int(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1e6)

    summary = {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "p50_us": pct(0.5),
        "p90_us": pct(0.9),
        "p99_us": pct(0.99),
        "p999_us": pct(0.999),
        "max_us": int(latencies[-1] * 1e6),
        "status_errors": errors,
    }
    print("BENCH_JSON " + json.dumps(summary))


if __name__ == "__main__":
    with open(os.environ["BENCH_BODIES"], "rb") as file:
        lines = [line for line in file.read().splitlines() if line]
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), lines))
