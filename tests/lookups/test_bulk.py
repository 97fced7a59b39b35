"""Bulk lookups: a CSV of indicators as a job — one result row per input row, rejected
indicators as error rows, every lookup in the history once."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from assay.orgs.models import CustomRole
from assay.settings import Settings
from tests.jobs.support import wait_for
from tests.lookups.conftest import Analyst, provider_settings
from tests.support.identity import MakeMember, bearer, login
from tests.support.mock_providers import RunningMockProviders

GOOD = ["185.220.101.34", "1.1.1.1", "hxxps://evil-example[.]com/path", "example.com", "4.2.2.2"]
BAD = ["10.0.0.1", "<script>", ""]


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, mock: RunningMockProviders
) -> Settings:
    # Small chunks and checkpoints, so the thousand rows cross several of each.
    return settings_factory(
        database_url=f"sqlite:///{tmp_path / 'assay.db'}",
        jobs_chunk_rows=400,
        jobs_checkpoint_rows=100,
        **provider_settings(mock),
    )


def _csv(indicators: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["indicator", "note"])
    writer.writerows([value, f"n{index}"] for index, value in enumerate(indicators))
    return buffer.getvalue().encode()


async def test_a_thousand_indicators_with_bad_rows_give_one_result_row_each(
    app: FastAPI, client: httpx.AsyncClient, analyst: Analyst
) -> None:
    indicators = [(GOOD + BAD)[i % len(GOOD + BAD)] for i in range(1000)]
    submitted = await client.post(
        "/v1/jobs",
        files={"file": ("indicators.csv", _csv(indicators), "text/csv")},
        data={"kind": "lookup_bulk", "providers": '["virustotal", "abuseipdb", "urlhaus"]'},
        headers=analyst.headers,
    )
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["kind"] == "lookup_bulk"
    job = await wait_for(client, analyst.token, submitted.json()["id"])
    assert job["state"] == "succeeded", job
    bad_rows = sum(1 for value in indicators if value in BAD)
    assert job["progress"] == {"done": 1000, "total": 1000, "row_errors": bad_rows}

    result = await client.get(
        f"/v1/jobs/{job['id']}/result", params={"format": "csv"}, headers=analyst.headers
    )
    assert result.status_code == 200
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert [int(r["row"]) for r in rows] == list(range(1000))
    for row, value in zip(rows, indicators, strict=True):
        if value in BAD:
            assert row["status"] == "error", row
            assert row["errors"], row
        else:
            assert row["status"] == "ok", row
            assert row["verdict"] in {"malicious", "clean", "suspicious", "unknown"}
    by_indicator = {r["indicator"]: r["verdict"] for r in rows if r["status"] == "ok"}
    assert by_indicator["185.220.101.34"] == "malicious"
    assert by_indicator["https://evil-example.com/path"] == "malicious"
    assert by_indicator["1.1.1.1"] == "clean"
    assert '"private_address"' in next(r for r in rows if r["row"] == "5")["errors"]

    # Every looked-up row is in the history exactly once.
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.get(
            "/v1/lookups",
            params={"limit": 500, **({"cursor": cursor} if cursor else {})},
            headers=analyst.headers,
        )
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(r["lookup_id"] for r in rows if r["status"] == "ok")


async def test_inline_rows_and_who_may_submit_them(
    app: FastAPI, client: httpx.AsyncClient, analyst: Analyst, make_member: MakeMember
) -> None:
    body = {"kind": "lookup_bulk", "params": {"records": [{"indicator": "1.1.1.1"}]}}
    submitted = await client.post("/v1/jobs", json=body, headers=analyst.headers)
    assert submitted.status_code == 202, submitted.text
    job = await wait_for(client, analyst.token, submitted.json()["id"])
    assert job["state"] == "succeeded"

    # jobs:write alone does not make a lookup.
    async with app.state.database.sessionmaker() as db:
        db.add(
            CustomRole(org_id=analyst.member.org_id, name="batch-only", permissions=["jobs:write"])
        )
        await db.commit()
    batch_only = await make_member(role="batch-only", org_slug=analyst.member.org_slug)
    token = (await login(client, batch_only))["access_token"]
    refused = await client.post("/v1/jobs", json=body, headers=bearer(token))
    assert refused.status_code == 403

    unknown = await client.post(
        "/v1/jobs", json={"kind": "nothing_like_it", "params": {}}, headers=analyst.headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["code"] == "unknown_kind"
    extra = {"kind": "lookup_bulk", "params": {"records": [{"indicator": "1.1.1.1"}], "x": 1}}
    assert (await client.post("/v1/jobs", json=extra, headers=analyst.headers)).status_code == 422
