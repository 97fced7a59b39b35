"""Helpers of the jobs tests: submitting, waiting for a state (bounded polling), reading."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.support.models import auth

TERMINAL = {"succeeded", "failed", "cancelled"}
# Bounded polling: a job's state is read at most this many times before the test fails.
POLLS = 3000


def csv_of(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    lines = [",".join(columns)]
    lines += [",".join(str(row.get(c, "")) for c in columns) for row in rows]
    return ("\n".join(lines) + "\n").encode()


async def submit_csv(
    client: httpx.AsyncClient, token: str, body: bytes, model: str = "fraud-rules", **form: str
) -> httpx.Response:
    return await client.post(
        "/v1/jobs",
        files={"file": ("rows.csv", body, "text/csv")},
        data={"model": model, **form},
        headers=auth(token),
    )


async def wait_for(
    client: httpx.AsyncClient, token: str, job_id: str, states: set[str] = TERMINAL
) -> dict[str, Any]:
    """The job once its state is one of `states` (polled, bounded)."""
    for _ in range(POLLS):
        answer = await client.get(f"/v1/jobs/{job_id}", headers=auth(token))
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        if job["state"] in states:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


async def result_rows(client: httpx.AsyncClient, token: str, job_id: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/v1/jobs/{job_id}/result?format=jsonl", headers=auth(token))
    assert answer.status_code == 200, answer.text
    return [json.loads(line) for line in answer.text.splitlines() if line]


def sse_events(text: str) -> list[dict[str, Any]]:
    """Parsed server-sent events (comments kept as {"comment": ...})."""
    events: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                events.append({"comment": line[1:].strip()})
            elif ":" in line:
                key, _, value = line.partition(":")
                event[key] = value.removeprefix(" ")
        if event:
            if "data" in event:
                event["data"] = json.loads(event["data"])
            events.append(event)
    return events
