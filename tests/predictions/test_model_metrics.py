"""Per-model metrics: counted by model and version, bounded, never minted by a bad name."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select

from assay.audit.service import RequestMeta
from assay.core.tenancy import across_tenants
from assay.predictions.metrics import OTHER, ModelSeries
from assay.registry.health import mark_unhealthy
from assay.registry.models import ModelVersion
from tests.support.models import auth, register_rules_model

GOOD = {"amount": 1200.0, "country": "GB"}
BAD = {"amount": -5.0, "country": "FR"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests(model: str, outcome: str) -> float:
    return sample("assay_model_requests_total", model=model, version="1", outcome=outcome)


async def test_each_call_is_counted_and_timed_under_its_model_and_version(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    name = f"metered-{uuid.uuid4().hex[:8]}"
    assert (await register_rules_model(client, owner_token, name)).status_code == 201
    url = f"/v1/models/{name}/predict"

    assert (await client.post(url, json={"record": GOOD}, headers=auth(owner_token))).is_success
    mixed = await client.post(url, json={"records": [GOOD, BAD, GOOD]}, headers=auth(owner_token))
    assert mixed.status_code == 200
    strict = await client.post(
        url, params={"strict": "true"}, json={"records": [BAD]}, headers=auth(owner_token)
    )
    assert strict.status_code == 422

    assert requests(name, "ok") == 2
    assert requests(name, "invalid") == 1
    labels = {"model": name, "version": "1"}
    assert sample("assay_model_invalid_records_total", **labels) == 2
    assert sample("assay_model_request_records_count", **labels) == 3
    assert sample("assay_model_request_records_sum", **labels) == 1 + 3 + 1
    assert sample("assay_model_request_duration_seconds_count", **labels) == 3
    assert sample("assay_model_request_duration_seconds_sum", **labels) > 0


async def test_a_version_that_will_not_load_is_counted_unavailable(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    name = f"failing-{uuid.uuid4().hex[:8]}"
    assert (await register_rules_model(client, owner_token, name)).status_code == 201
    async with app.state.database.sessionmaker() as db:
        version = (
            await db.execute(across_tenants(select(ModelVersion), "test: the only version"))
        ).scalar_one()
        await mark_unhealthy(db, RequestMeta(), version, name, reason="checked elsewhere")
        await db.commit()
    refused = await client.post(
        f"/v1/models/{name}/predict", json={"record": GOOD}, headers=auth(owner_token)
    )
    assert refused.status_code == 503
    assert requests(name, "unavailable") == 1
    assert requests(name, "ok") == 0


async def test_a_name_that_does_not_resolve_mints_no_series(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    name = f"absent-{uuid.uuid4().hex[:8]}"
    missing = await client.post(
        f"/v1/models/{name}/predict", json={"record": GOOD}, headers=auth(owner_token)
    )
    assert missing.status_code == 404
    names = {
        sample.labels.get("model")
        for family in REGISTRY.collect()
        if family.name.startswith("assay_model_")
        for sample in family.samples
    }
    assert name not in names


def test_series_beyond_the_limit_share_one_label_set() -> None:
    series = ModelSeries(limit=2)
    assert series.labels("a", 1) == ("a", "1")
    assert series.labels("b", 3) == ("b", "3")
    assert series.labels("a", 2) == (OTHER, OTHER)
    # Models seen before the limit keep their own series.
    assert series.labels("b", 3) == ("b", "3")
