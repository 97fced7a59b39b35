"""Acceptance tests of the startup-success pack (FLASH's job), through the HTTP API."""

from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy import select

from assay.core.tenancy import across_tenants
from assay.engine.errors import InvalidArtifact, InvalidModelDefinition
from assay.engine.pack import Pack
from assay.predictions.models import PredictionRecord
from assay.predictions.records import read_private_inputs
from assay.registry.models import RegisteredModel
from tests.support.engine import PRE_SEED_NO_REVENUE, SERIES_A, example_modules, trained_pack
from tests.support.identity import Member
from tests.support.models import auth, import_pack_into

from ..conftest import KNOWN_SECRETS

__all__ = ["example_modules", "trained_pack"]
ENSEMBLE = "startup-success"
PILLARS = {"capital-pillar", "advantage-pillar", "market-pillar", "people-pillar"}


@pytest.fixture
async def pack_key(
    app: FastAPI, client: httpx.AsyncClient, owner: Member, owner_token: str, trained_pack: Pack
) -> str:
    await import_pack_into(app, owner.org_id, trained_pack.directory)
    created = await client.post(
        "/v1/org/api-keys",
        json={"name": "pack", "scopes": ["predict", "models:read", "system:read"]},
        headers=auth(owner_token),
    )
    key: str = created.json()["key"]
    KNOWN_SECRETS.add(key)
    return key


async def _predict(client: httpx.AsyncClient, key: str, model: str, **body: Any) -> httpx.Response:
    return await client.post(f"/v1/models/{model}/predict", json=body, headers={"x-api-key": key})


async def test_series_a_profile_scores_with_pillars_verdict_and_risk(
    client: httpx.AsyncClient, pack_key: str
) -> None:
    response = await _predict(client, pack_key, ENSEMBLE, record=SERIES_A)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["derived"]["runway_months"] == pytest.approx(20.0)
    assert 0.0 <= result["score"] <= 1.0
    components = {c["name"]: c for c in result["explanation"]["components"]}
    assert set(components) >= PILLARS
    for pillar in PILLARS:
        assert 0.0 <= components[pillar]["score"] <= 1.0
    score = result["score"]
    expected_verdict = "PASS" if score >= 0.7 else "CONDITIONAL PASS" if score >= 0.5 else "FAIL"
    expected_risk = "high" if score < 0.3 else "medium" if score < 0.7 else "low"
    assert result["label"] == expected_verdict
    assert result["risk"] == expected_risk
    # The components' weighted contributions add up to the final score.
    total = sum(c["contribution"] for c in components.values())
    assert math.isclose(total, score, rel_tol=1e-9, abs_tol=1e-9)


async def test_pre_seed_with_no_revenue_scores(client: httpx.AsyncClient, pack_key: str) -> None:
    response = await _predict(client, pack_key, ENSEMBLE, record=PRE_SEED_NO_REVENUE)
    assert response.status_code == 200, response.text
    assert 0.0 <= response.json()["results"][0]["score"] <= 1.0


async def test_impossible_gross_margin_is_a_422_naming_the_field(
    client: httpx.AsyncClient, pack_key: str
) -> None:
    response = await _predict(
        client, pack_key, ENSEMBLE, record={**SERIES_A, "gross_margin_percent": 150}
    )
    assert response.status_code == 422
    assert any("gross_margin_percent" in e["field"] for e in response.json()["errors"])


async def test_same_input_gives_the_same_output(client: httpx.AsyncClient, pack_key: str) -> None:
    first = await _predict(client, pack_key, ENSEMBLE, record=SERIES_A)
    second = await _predict(client, pack_key, ENSEMBLE, record=SERIES_A)
    assert first.json()["results"] == second.json()["results"]


@pytest.mark.parametrize("model", ["startup-success-lgbm", "startup-success-logreg", ENSEMBLE])
async def test_more_prior_exits_never_lower_the_score_of_any_profile(
    client: httpx.AsyncClient,
    pack_key: str,
    example_modules: dict[str, ModuleType],
    model: str,
) -> None:
    companies, _ = example_modules["synthetic"].generate_companies(40, 123)
    exits = range(6)
    rows = [
        {
            **company,
            "prior_startup_experience_count": max(company["prior_startup_experience_count"], 5),
            "prior_successful_exits_count": n,
        }
        for company in companies
        for n in exits
    ]
    response = await client.post(
        f"/v1/models/{model}/predict?explain=false&strict=true",
        json={"records": rows},
        headers={"x-api-key": pack_key},
    )
    assert response.status_code == 200, response.text
    scores = [r["score"] for r in response.json()["results"]]
    for start in range(0, len(scores), len(exits)):
        profile = scores[start : start + len(exits)]
        assert all(b >= a for a, b in itertools.pairwise(profile)), (model, start, profile)
    # The profiles differ enough that the check is not about one flat line.
    assert len({round(score, 6) for score in scores}) > len(companies)


async def test_a_batch_of_n_rows_gives_n_results_in_order(
    client: httpx.AsyncClient, pack_key: str
) -> None:
    rows = [
        {**SERIES_A, "company_name": f"Company {i}", "cash_on_hand_usd": 1e6 * (i + 1)}
        for i in range(25)
    ]
    response = await _predict(client, pack_key, ENSEMBLE, records=rows)
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(25))
    runways = [r["derived"]["runway_months"] for r in results]
    assert runways == pytest.approx([2.5 * (i + 1) for i in range(25)])


async def test_no_credentials_is_a_401(client: httpx.AsyncClient, pack_key: str) -> None:
    response = await client.post(f"/v1/models/{ENSEMBLE}/predict", json={"record": SERIES_A})
    assert response.status_code == 401


async def test_a_tampered_artifact_is_refused_and_shows_unhealthy(
    app: FastAPI, client: httpx.AsyncClient, pack_key: str
) -> None:
    detail = await client.get("/v1/models/startup-success-lgbm", headers={"x-api-key": pack_key})
    digest = detail.json()["versions"][0]["artifact_digest"]
    path = app.state.registry.store.root / "sha256" / digest[:2] / digest
    path.write_bytes(path.read_bytes().replace(b"tree", b"TREE", 1))
    # Force a fresh load, as after an eviction or in a new worker.
    for entry in app.state.registry.cache.loaded():
        app.state.registry.cache.evict(entry.version_id)
    response = await _predict(client, pack_key, "startup-success-lgbm", record=SERIES_A)
    assert response.status_code == 503
    assert response.json()["type"] == "urn:assay:problem:model-unavailable"
    assert "integrity" in response.json()["detail"]
    info = await client.get("/v1/system/info", headers={"x-api-key": pack_key})
    status = {m["model"]: m["status"] for m in info.json()["models"]}
    assert status["startup-success-lgbm"] == "unhealthy"
    again = await _predict(client, pack_key, "startup-success-lgbm", record=SERIES_A)
    assert again.status_code == 503
    ensemble = await _predict(client, pack_key, ENSEMBLE, record=SERIES_A)
    assert ensemble.status_code == 503


# --- importing the pack ------------------------------------------------------------------


def _copy_pack(trained_pack: Pack, tmp_path: Path) -> Path:
    directory = tmp_path / "pack"
    shutil.copytree(trained_pack.directory, directory)
    return directory


async def test_importing_the_pack_again_keeps_its_versions(
    app: FastAPI, client: httpx.AsyncClient, pack_key: str, owner: Member, trained_pack: Pack
) -> None:
    again = await import_pack_into(app, owner.org_id, trained_pack.directory)
    assert {(m.name, m.version, m.created) for m in again} == {
        (m.name, 1, False) for m in trained_pack.models
    }
    detail = await client.get(f"/v1/models/{ENSEMBLE}", headers={"x-api-key": pack_key})
    assert [v["version"] for v in detail.json()["versions"]] == [1]
    assert detail.json()["aliases"] == {"production": 1}


async def test_a_pack_whose_artifact_does_not_load_registers_nothing(
    app: FastAPI, owner: Member, trained_pack: Pack, tmp_path: Path
) -> None:
    directory = _copy_pack(trained_pack, tmp_path)
    # Still LightGBM text by its first bytes, so only loading it finds the problem.
    (directory / "build" / "startup_success_lgbm.txt").write_bytes(
        b"tree\nversion=v4\nnothing else"
    )
    with pytest.raises(InvalidArtifact):
        await import_pack_into(app, owner.org_id, directory)
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(across_tenants(select(RegisteredModel.id), "test counts"))
        assert rows.all() == []


async def test_an_untrained_pack_says_how_to_train_it_and_registers_nothing(
    app: FastAPI, owner: Member, trained_pack: Pack, tmp_path: Path
) -> None:
    directory = _copy_pack(trained_pack, tmp_path)
    shutil.rmtree(directory / "build")
    with pytest.raises(InvalidModelDefinition) as caught:
        await import_pack_into(app, owner.org_id, directory)
    assert "train.py" in caught.value.detail
    assert {e["message"] for e in caught.value.errors or []} == {
        "build/startup_success_lgbm.txt does not exist",
        "build/startup_success_logreg.onnx does not exist",
    }
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(across_tenants(select(RegisteredModel.id), "test counts"))
        assert rows.all() == []


@pytest.mark.parametrize("mode", ["drop", "encrypt"])
async def test_a_pack_sets_how_records_keep_personal_data(
    app: FastAPI,
    client: httpx.AsyncClient,
    owner: Member,
    owner_token: str,
    trained_pack: Pack,
    tmp_path: Path,
    mode: str,
) -> None:
    directory = _copy_pack(trained_pack, tmp_path)
    manifest = yaml.safe_load((directory / "manifest.yaml").read_text())
    manifest["records"] = {"pii": mode}
    (directory / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    await import_pack_into(app, owner.org_id, directory)
    response = await client.post(
        f"/v1/models/{ENSEMBLE}/predict", json={"record": SERIES_A}, headers=auth(owner_token)
    )
    assert response.status_code == 200
    await app.state.predictions.recorder.flush()
    async with app.state.database.sessionmaker() as db:
        [record] = (
            await db.execute(across_tenants(select(PredictionRecord), "test reads records"))
        ).scalars()
    assert "founder_email" not in record.inputs
    if mode == "drop":
        assert record.inputs_encrypted is None
    else:
        private = read_private_inputs(app.state.identity.keyring, record)
        assert private == {"founder_email": SERIES_A["founder_email"]}
