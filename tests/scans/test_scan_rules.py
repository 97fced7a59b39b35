"""What a scan refuses, who may start and read one, and cancelling one mid-way."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from assay.mock_target.background import serve_in_background
from tests.scans.conftest import (
    Scanner,
    all_attempts,
    chat_target,
    mock_requests,
    register_target,
    start_scan,
    wait_for_scan,
)
from tests.support.identity import bearer, login, new_member

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"target": "nobody"}, 404, None),
        ({"target": "vulnerable", "probe_sets": ["no-such-set"]}, 422, "unknown_probe_set"),
        ({"target": "vulnerable", "transforms": ["rot13x"]}, 422, "unknown_transform"),
        ({"target": "vulnerable", "transforms": ["base64", "base64"]}, 422, "duplicate"),
        ({"target": "vulnerable", "include_plain": False}, 422, "nothing_to_send"),
        ({"target": "vulnerable", "concurrency": 0}, 422, None),
        ({"target": "vulnerable", "surprise": 1}, 422, None),
    ],
    ids=["unknown-target", "unknown-set", "unknown-transform", "twice", "nothing", "zero", "extra"],
)
async def test_scans_that_cannot_run_are_refused_before_anything_is_sent(
    client: httpx.AsyncClient,
    scanner: Scanner,
    body: dict[str, object],
    status: int,
    code: str | None,
) -> None:
    answer = await client.post("/v1/scans", json=body, headers=scanner.headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert code in {e["code"] for e in answer.json()["errors"]}
    assert mock_requests(scanner.mock) == []
    assert (await client.get("/v1/scans", headers=scanner.headers)).json()["items"] == []


async def test_without_the_pack_the_missing_detectors_are_named(
    client: httpx.AsyncClient, app: FastAPI, target_mock: object
) -> None:
    member = await new_member(app)
    token = (await login(client, member))["access_token"]
    scanner = Scanner(member, token, target_mock)  # type: ignore[arg-type]
    await register_target(client, scanner, "vulnerable", chat_target(scanner.mock, "vulnerable"))
    answer = await client.post("/v1/scans", json={"target": "vulnerable"}, headers=scanner.headers)
    assert answer.status_code == 409
    problem = answer.json()
    assert problem["type"].endswith(":detectors-missing")
    assert "redteam-canary" in {e["message"] for e in problem["errors"]}
    assert "assay models import" in problem["detail"]


async def test_scans_are_started_through_their_own_api_only(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    answer = await client.post(
        "/v1/jobs",
        json={
            "kind": "redteam_scan",
            "params": {"scan_id": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "records": [{}]},
        },
        headers=scanner.headers,
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["code"] == "not_submittable"


async def test_who_may_scan_and_read_scans(
    client: httpx.AsyncClient, scanner: Scanner, app: FastAPI
) -> None:
    started = await start_scan(client, scanner, target="refusing", probe_sets=["prompt-injection"])
    await wait_for_scan(client, scanner, started["id"])
    viewer = await new_member(app, role="viewer", org_slug=scanner.member.org_slug)
    viewer_token = (await login(client, viewer))["access_token"]
    for path in (f"/v1/scans/{started['id']}", "/v1/scans", "/v1/scans/probe-sets"):
        assert (await client.get(path, headers=bearer(viewer_token))).status_code == 403
    refused = await client.post(
        "/v1/scans", json={"target": "refusing"}, headers=bearer(viewer_token)
    )
    assert refused.status_code == 403
    analyst = await new_member(app, role="analyst", org_slug=scanner.member.org_slug)
    analyst_token = (await login(client, analyst))["access_token"]
    mine = await client.post(
        "/v1/scans",
        json={"target": "refusing", "probe_sets": ["prompt-injection"]},
        headers=bearer(analyst_token),
    )
    assert mine.status_code == 202, mine.text
    outsider = await new_member(app)
    outsider_token = (await login(client, outsider))["access_token"]
    for path in ("", "/attempts", "/findings", "/report"):
        answer = await client.get(
            f"/v1/scans/{started['id']}{path}", headers=bearer(outsider_token)
        )
        assert answer.status_code == 404, path
    cancel = await client.post(f"/v1/scans/{started['id']}/cancel", headers=bearer(outsider_token))
    assert cancel.status_code == 404
    probe_sets = (await client.get("/v1/scans/probe-sets", headers=scanner.headers)).json()
    names = {p["name"] for p in probe_sets}
    assert {"prompt-injection", "system-prompt-leakage"} <= names
    assert all(p["probes"] > 0 and p["taxonomy"] for p in probe_sets)
    await wait_for_scan(client, scanner, mine.json()["id"])


async def test_a_cancelled_scan_stops_and_keeps_what_it_found(
    client: httpx.AsyncClient, scanner: Scanner
) -> None:
    # A slow target (half a second an answer, one at a time): the scan cannot end by
    # itself before the cancellation reaches its next checkpoint.
    slow = serve_in_background(latency_seconds=0.5)
    try:
        body = chat_target(scanner.mock, "vulnerable", concurrency=1)
        body["url"] = f"{slow.base_url}/vulnerable/v1/chat/completions"
        await register_target(client, scanner, "slow", body)
        started = await start_scan(client, scanner, target="slow", transforms=["base64"])
        await wait_for_scan(client, scanner, started["id"], lambda s: s["done"] >= 1)
        cancelled = await client.post(f"/v1/scans/{started['id']}/cancel", headers=scanner.headers)
        assert cancelled.status_code == 200
        assert cancelled.json()["cancel_requested"] is True
        scan = await wait_for_scan(client, scanner, started["id"])
        assert scan["state"] == "cancelled"
        assert 0 < scan["done"] < scan["total"]
        attempts = await all_attempts(client, scanner, started["id"])
        assert 0 < len(attempts) < scan["total"]
        assert len(mock_requests(slow)) == len(attempts)
        assert scan["findings"] is not None
    finally:
        slow.stop()
