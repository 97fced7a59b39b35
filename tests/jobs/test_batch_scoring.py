"""Batch scoring jobs in process: every row scored as predict would, errors as data."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from assay.core.tenancy import across_tenants
from assay.events.models import Event
from assay.predictions.models import PredictionRecord
from tests.jobs.support import csv_of, result_rows, submit_csv, wait_for
from tests.support.models import auth, register_rules_model

ROWS: list[dict[str, Any]] = [
    {"amount": 5000, "country": "GB"},
    {"amount": 10, "country": "US"},
    {"amount": -5, "country": "US"},  # below the minimum: a row error
    {"amount": 2500, "country": "FR"},  # not in the enum: a row error
    {"amount": 1000, "country": "DE", "email": "a@example.org"},
    {"amount": "lots", "country": "GB"},  # not a number: a row error
    {"amount": 999, "country": "GB"},
]


async def _predicted(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    answer = await client.post(
        "/v1/models/fraud-rules/predict",
        json={"records": ROWS},
        headers=auth(token),
        params={"explain": "false"},
    )
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


async def _records(app: FastAPI) -> int:
    async with app.state.database.sessionmaker() as db:
        statement = across_tenants(
            select(func.count()).select_from(PredictionRecord), "test: count every record"
        )
        return int((await db.execute(statement)).scalar_one())


async def test_csv_job_scores_every_row_like_predict_and_reports_row_errors(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    await register_rules_model(client, owner_token)
    expected = await _predicted(client, owner_token)
    records_before = await _records(app)

    submitted = await submit_csv(client, owner_token, csv_of(ROWS, ["amount", "country", "email"]))
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["progress"]["total"] == len(ROWS)
    job = await wait_for(client, owner_token, submitted.json()["id"])

    assert job["state"] == "succeeded"
    assert job["progress"] == {"done": 7, "total": 7, "row_errors": 3}
    assert job["partial"] is False
    rows = await result_rows(client, owner_token, job["id"])
    assert [r["row"] for r in rows] == list(range(len(ROWS)))
    for row, want in zip(rows, expected, strict=True):
        if "errors" in want:
            assert row["status"] == "error"
            assert [e["code"] for e in row["errors"]] == [e["code"] for e in want["errors"]]
        else:
            assert row["status"] == "ok"
            assert (row["score"], row["label"]) == (want["score"], want["label"])
    # Every scored row is a prediction record, exactly once.
    assert await _records(app) - records_before == 4
    # Its end is an event (webhooks deliver it), recorded with the change.
    async with app.state.database.sessionmaker() as db:
        published = (
            await db.execute(
                across_tenants(select(Event).where(Event.type == "job.succeeded"), "test")
            )
        ).scalars()
        data = [event.data for event in published]
    assert data == [
        {
            "job_id": job["id"],
            "kind": "batch_score",
            "state": "succeeded",
            "progress": {"done": 7, "total": 7, "row_errors": 3},
        }
    ]


async def test_json_submission_and_csv_download(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    submitted = await client.post(
        "/v1/jobs",
        json={"kind": "batch_score", "params": {"model": "fraud-rules", "records": ROWS}},
        headers=auth(owner_token),
    )
    assert submitted.status_code == 202, submitted.text
    job = await wait_for(client, owner_token, submitted.json()["id"])
    assert job["state"] == "succeeded"

    answer = await client.get(
        f"/v1/jobs/{job['id']}/result", headers={**auth(owner_token), "accept": "text/csv"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(r["row"]) for r in table] == list(range(len(ROWS)))
    assert table[2]["status"] == "error"
    assert json.loads(table[2]["errors"])[0]["field"] == "amount"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 422, "no_header"),
        (b"amount,country\n", 422, "empty"),
        (b"amount,amount\n1,2\n", 422, "header"),
    ],
)
async def test_unusable_inputs_are_refused_with_a_reason(
    client: httpx.AsyncClient, owner_token: str, body: bytes, status: int, code: str
) -> None:
    await register_rules_model(client, owner_token)
    answer = await submit_csv(client, owner_token, body)
    assert answer.status_code == status, answer.text
    assert answer.json()["errors"][0]["code"] == code


async def test_an_upload_form_names_its_version_and_explain_as_text(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    body = csv_of(ROWS[:2], ["amount", "country"])
    accepted = await submit_csv(client, owner_token, body, version="1", explain="true")
    assert accepted.status_code == 202, accepted.text
    job = await wait_for(client, owner_token, accepted.json()["id"])
    assert job["state"] == "succeeded"
    assert (job["params"]["version"], job["params"]["explain"]) == (1, True)

    not_a_number = await submit_csv(client, owner_token, body, version="first")
    assert not_a_number.status_code == 422
    assert [e["field"] for e in not_a_number.json()["errors"]] == ["form.version"]
    smuggled = await submit_csv(client, owner_token, body, records='[{"amount": 1}]')
    assert smuggled.status_code == 422
    assert smuggled.json()["errors"][0]["field"] == "records"


async def test_a_finished_job_is_counted_and_timed(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    from prometheus_client import REGISTRY

    labels = {"kind": "batch_score", "outcome": "succeeded"}

    def finished() -> tuple[float, float]:
        return (
            REGISTRY.get_sample_value("assay_jobs_finished_total", labels) or 0.0,
            REGISTRY.get_sample_value("assay_job_duration_seconds_count", labels) or 0.0,
        )

    await register_rules_model(client, owner_token)
    before = finished()
    accepted = await submit_csv(client, owner_token, csv_of(ROWS[:2], ["amount", "country"]))
    assert accepted.status_code == 202, accepted.text
    assert (await wait_for(client, owner_token, accepted.json()["id"]))["state"] == "succeeded"
    assert finished() == (before[0] + 1, before[1] + 1)
