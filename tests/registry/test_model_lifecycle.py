"""Registering, signing, loading, health, aliases, verification and revocation, through
the API, with real artifacts, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import lightgbm
import numpy as np
import pytest
import skops.io as sio
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sklearn.tree import DecisionTreeClassifier
from sqlalchemy import select

from assay.app import create_app
from assay.audit.models import SecurityEvent
from assay.audit.service import RequestMeta
from assay.core.tenancy import across_tenants
from assay.engine.integrity import (
    encode_signature,
    generate_publisher_key,
    public_key_base64,
    sign_artifact,
)
from assay.registry.health import mark_unhealthy
from assay.registry.models import ModelVersion, RegisteredModel
from assay.settings import Settings
from tests.support.engine import artifacts, tiny_data, tiny_logreg, tiny_schema_document
from tests.support.identity import MakeMember, Member, login
from tests.support.models import RULES_MANIFEST, auth, register_rules_model

__all__ = ["artifacts", "tiny_data", "tiny_logreg"]
RECORD = {"a": 1.0, "b": 0.5, "c": -0.2, "d": 0.0}


def ml_manifest(fmt: str = "lightgbm", **spec: Any) -> dict[str, Any]:
    return {"schema": tiny_schema_document(), "spec": {"kind": "ml", "format": fmt, **spec}}


async def create(client: httpx.AsyncClient, token: str, name: str, kind: str = "ml") -> None:
    created = await client.post(
        "/v1/models", json={"name": name, "kind": kind}, headers=auth(token)
    )
    assert created.status_code == 201, created.text


async def upload(
    client: httpx.AsyncClient,
    token: str,
    name: str,
    artifact: bytes,
    *,
    manifest: dict[str, Any] | None = None,
    signature: str | None = None,
    file_name: str = "model.bin",
) -> httpx.Response:
    data = {"manifest": json.dumps(manifest or ml_manifest())}
    if signature is not None:
        data["signature"] = signature
    return await client.post(
        f"/v1/models/{name}/versions",
        data=data,
        files={"artifact": (file_name, artifact, "application/octet-stream")},
        headers=auth(token),
    )


async def point(
    client: httpx.AsyncClient, token: str, name: str, version: int, alias: str = "production"
) -> httpx.Response:
    return await client.put(
        f"/v1/models/{name}/aliases/{alias}", json={"version": version}, headers=auth(token)
    )


async def predict(
    client: httpx.AsyncClient, token: str, name: str, record: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(
        f"/v1/models/{name}/predict", json={"record": record or RECORD}, headers=auth(token)
    )


async def trust(client: httpx.AsyncClient, token: str, public_key: str) -> str:
    response = await client.post(
        "/v1/org/publisher-keys",
        json={"name": "ml team", "public_key": public_key},
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    fingerprint: str = response.json()["fingerprint"]
    return fingerprint


def stored_path(app: FastAPI, digest: str) -> Path:
    root: Path = app.state.registry.store.root
    return root / "sha256" / digest[:2] / digest


async def events(app: FastAPI, action: str) -> list[SecurityEvent]:
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(
            across_tenants(
                select(SecurityEvent).where(SecurityEvent.action == action), "test reads events"
            )
        )
        return list(rows.scalars())


async def model_count(app: FastAPI) -> int:
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(across_tenants(select(RegisteredModel.id), "test counts"))
        return len(rows.all())


async def version_count(app: FastAPI) -> int:
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(across_tenants(select(ModelVersion.id), "test counts"))
        return len(rows.all())


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels or None) or 0.0


async def status_of(client: httpx.AsyncClient, token: str, name: str) -> dict[int, tuple[Any, ...]]:
    detail = await client.get(f"/v1/models/{name}", headers=auth(token))
    return {v["version"]: (v["status"], v["status_reason"]) for v in detail.json()["versions"]}


# --- signatures at upload ----------------------------------------------------------------


async def test_a_signed_artifact_uploads_and_names_its_signer(
    client: httpx.AsyncClient, owner_token: str, artifacts: dict[str, bytes], app: FastAPI
) -> None:
    key = generate_publisher_key()
    fingerprint = await trust(client, owner_token, public_key_base64(key.public_key()))
    await create(client, owner_token, "signed")
    data = artifacts["lightgbm"]
    response = await upload(
        client, owner_token, "signed", data, signature=encode_signature(sign_artifact(data, key))
    )
    assert response.status_code == 201, response.text
    assert response.json()["signed_by"] == fingerprint
    shown = await client.get("/v1/models/signed/versions/1", headers=auth(owner_token))
    assert shown.json()["signed_by"] == fingerprint
    [created] = await events(app, "model.version_created")
    assert created.details["signed_by"] == fingerprint

    unsigned = await upload(
        client,
        owner_token,
        "signed",
        artifacts["xgboost-json"],
        manifest=ml_manifest("xgboost-json"),
    )
    assert unsigned.status_code == 201
    assert unsigned.json()["signed_by"] is None


async def test_bad_or_untrusted_signatures_register_nothing(
    client: httpx.AsyncClient, owner_token: str, artifacts: dict[str, bytes], app: FastAPI
) -> None:
    trusted_key, stranger = generate_publisher_key(), generate_publisher_key()
    await trust(client, owner_token, public_key_base64(trusted_key.public_key()))
    await create(client, owner_token, "signed")
    data = artifacts["lightgbm"]
    for signature in (
        encode_signature(sign_artifact(data, stranger)),  # a key nobody trusts here
        encode_signature(sign_artifact(data + b"\n", trusted_key)),  # other bytes
        "not a signature",
    ):
        response = await upload(client, owner_token, "signed", data, signature=signature)
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "urn:assay:problem:untrusted-artifact"
    assert await version_count(app) == 0
    rules = await client.post(
        "/v1/models", json={"name": "plain", "kind": "rules"}, headers=auth(owner_token)
    )
    assert rules.status_code == 201
    signed_rules = await client.post(
        "/v1/models/plain/versions",
        data={"manifest": json.dumps(RULES_MANIFEST), "signature": "abc"},
        headers=auth(owner_token),
    )
    assert signed_rules.status_code == 422


async def test_pickle_is_refused_through_the_api_saying_why(
    client: httpx.AsyncClient, owner_token: str, artifacts: dict[str, bytes], app: FastAPI
) -> None:
    await create(client, owner_token, "pickled")
    key = generate_publisher_key()
    await trust(client, owner_token, public_key_base64(key.public_key()))
    data = artifacts["pickle"]
    for signature in (None, encode_signature(sign_artifact(data, key))):
        response = await upload(
            client,
            owner_token,
            "pickled",
            data,
            manifest=ml_manifest("pickle"),
            signature=signature,
        )
        assert response.status_code == 422
        assert response.json()["type"] == "urn:assay:problem:untrusted-artifact"
        assert "run code when they are loaded" in response.json()["detail"]
    # Renamed: still pickle by its bytes.
    disguised = await upload(
        client, owner_token, "pickled", data, manifest=ml_manifest("onnx"), file_name="m.onnx"
    )
    assert disguised.status_code == 422
    assert "pickle" in disguised.json()["detail"]
    assert await version_count(app) == 0


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], database_url: str) -> Settings:
    # Every request re-reads its alias resolution: what another process writes to a
    # version's status applies on the next request.
    return settings_factory(database_url=database_url, model_resolution_cache_seconds=0)


async def test_signatures_can_be_required_and_pickle_allowed_when_signed(
    client: httpx.AsyncClient,
    owner: Member,
    artifacts: dict[str, bytes],
    settings_factory: Callable[..., Settings],
    database_url: str,
    settings: Settings,
) -> None:
    strict = create_app(
        settings.model_copy(update={"require_model_signatures": True, "allow_pickle_models": True})
    )
    async with strict.router.lifespan_context(strict):
        transport = httpx.ASGITransport(app=strict, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            token = (await login(http, owner))["access_token"]
            await create(http, token, "strict")
            unsigned = await upload(http, token, "strict", artifacts["lightgbm"])
            assert unsigned.status_code == 422
            assert "requires every artifact to be signed" in unsigned.json()["detail"]
            key = generate_publisher_key()
            await trust(http, token, public_key_base64(key.public_key()))
            data = artifacts["pickle"]
            signed = await upload(
                http,
                token,
                "strict",
                data,
                manifest=ml_manifest("pickle"),
                signature=encode_signature(sign_artifact(data, key)),
            )
            assert signed.status_code == 201, signed.text
            assert (await point(http, token, "strict", 1)).status_code == 200
            assert (await predict(http, token, "strict")).status_code == 200


# --- registration loads ------------------------------------------------------------------


async def test_an_artifact_that_sniffs_right_but_does_not_load_registers_nothing(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    await create(client, owner_token, "broken")
    response = await upload(client, owner_token, "broken", b"tree\nversion=v4\nnothing else")
    assert response.status_code == 422
    assert response.json()["type"] == "urn:assay:problem:invalid-artifact"
    assert await version_count(app) == 0


async def test_skops_types_are_trusted_only_from_settings(
    client: httpx.AsyncClient,
    owner: Member,
    owner_token: str,
    tiny_data: tuple[np.ndarray, np.ndarray],
    settings: Settings,
    app: FastAPI,
) -> None:
    x, y = tiny_data
    tree = sio.dumps(DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y))
    await create(client, owner_token, "tree")
    refused = await upload(client, owner_token, "tree", tree, manifest=ml_manifest("skops"))
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:assay:problem:untrusted-artifact"
    assert refused.json()["untrusted_types"] == ["sklearn.tree._tree.Tree"]

    trusting = create_app(
        settings.model_copy(update={"skops_trusted_types": ["sklearn.tree._tree.Tree"]})
    )
    async with trusting.router.lifespan_context(trusting):
        transport = httpx.ASGITransport(app=trusting, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            token = (await login(http, owner))["access_token"]
            accepted = await upload(http, token, "tree", tree, manifest=ml_manifest("skops"))
            assert accepted.status_code == 201, accepted.text
            assert (await point(http, token, "tree", 1)).status_code == 200
            assert (await predict(http, token, "tree")).status_code == 200
    # A process whose operator does not trust the type refuses the stored version at load:
    # unhealthy with the reason, for every process, until verified where it is trusted.
    refused_at_load = await predict(client, owner_token, "tree")
    assert refused_at_load.status_code == 503
    assert "refused at load" in refused_at_load.json()["detail"]
    assert "sklearn.tree._tree.Tree" in refused_at_load.json()["detail"]
    assert (await status_of(client, owner_token, "tree"))[1][0] == "unhealthy"
    [event] = await events(app, "model.load_refused")
    assert event.details["model"] == "tree"


def test_skops_trusted_types_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, settings_factory: Callable[..., Settings]
) -> None:
    from assay.settings import load_settings

    monkeypatch.setenv("ASSAY_SKOPS_TRUSTED_TYPES", "sklearn.tree._tree.Tree, numpy.dtype")
    assert load_settings().skops_trusted_types == ["sklearn.tree._tree.Tree", "numpy.dtype"]


# --- load failures -----------------------------------------------------------------------


async def _registered_lightgbm(
    client: httpx.AsyncClient, token: str, artifacts: dict[str, bytes], name: str = "lgbm"
) -> str:
    await create(client, token, name)
    response = await upload(client, token, name, artifacts["lightgbm"])
    assert response.status_code == 201, response.text
    assert (await point(client, token, name, 1)).status_code == 200
    digest: str = response.json()["artifact_digest"]
    return digest


async def test_a_deleted_artifact_is_an_integrity_failure_remembered_not_retried(
    client: httpx.AsyncClient, owner_token: str, artifacts: dict[str, bytes], app: FastAPI
) -> None:
    digest = await _registered_lightgbm(client, owner_token, artifacts)
    stored_path(app, digest).unlink()
    for entry in app.state.registry.cache.loaded():
        app.state.registry.cache.evict(entry.version_id)
    failures = metric("assay_model_integrity_failures_total")
    response = await predict(client, owner_token, "lgbm")
    assert response.status_code == 503
    assert response.json()["type"] == "urn:assay:problem:model-unavailable"
    assert "missing" in response.json()["detail"]
    assert metric("assay_model_integrity_failures_total") == failures + 1
    [event] = await events(app, "model.integrity_failed")
    assert event.outcome == "failure"
    assert event.details["model"] == "lgbm"
    # The status answers the next requests; nothing is read or hashed again.
    again = await predict(client, owner_token, "lgbm")
    assert again.status_code == 503
    assert metric("assay_model_integrity_failures_total") == failures + 1
    assert len(await events(app, "model.integrity_failed")) == 1
    info = await client.get("/v1/system/info", headers=auth(owner_token))
    [shown] = [m for m in info.json()["models"] if m["model"] == "lgbm"]
    assert shown["status"] == "unhealthy"
    assert "missing" in shown["status_reason"]


async def test_an_unhealthy_status_written_elsewhere_stops_a_cached_version(
    client: httpx.AsyncClient, owner_token: str, artifacts: dict[str, bytes], app: FastAPI
) -> None:
    await _registered_lightgbm(client, owner_token, artifacts)
    assert (await predict(client, owner_token, "lgbm")).status_code == 200
    # As `assay models verify` in another process would: only the row changes.
    async with app.state.database.sessionmaker() as db:
        version = (await db.execute(across_tenants(select(ModelVersion), "test"))).scalar_one()
        await mark_unhealthy(db, RequestMeta(), version, "lgbm", reason="checked elsewhere")
        await db.commit()
    response = await predict(client, owner_token, "lgbm")
    assert response.status_code == 503
    assert "checked elsewhere" in response.json()["detail"]


# --- aliases -----------------------------------------------------------------------------


async def test_an_alias_never_moves_to_an_unhealthy_or_tampered_version(
    client: httpx.AsyncClient, owner_token: str, artifacts: dict[str, bytes], app: FastAPI
) -> None:
    await _registered_lightgbm(client, owner_token, artifacts)
    second = await upload(
        client, owner_token, "lgbm", artifacts["xgboost-json"], manifest=ml_manifest("xgboost-json")
    )
    assert second.status_code == 201
    path = stored_path(app, second.json()["artifact_digest"])
    good = path.read_bytes()
    path.write_bytes(good.replace(b"{", b" {", 1))
    moved = await point(client, owner_token, "lgbm", 2, "staging")
    assert moved.status_code == 409
    assert "integrity" in moved.json()["detail"]
    assert (await status_of(client, owner_token, "lgbm"))[2][0] == "unhealthy"
    assert len(await events(app, "model.integrity_failed")) == 1
    # Restored, but still unhealthy until verified: the alias stays where it was.
    path.write_bytes(good)
    still = await point(client, owner_token, "lgbm", 2, "staging")
    assert still.status_code == 409
    detail = await client.get("/v1/models/lgbm", headers=auth(owner_token))
    assert detail.json()["aliases"] == {"production": 1}


async def test_verification_marks_unhealthy_then_healthy_again_with_events(
    client: httpx.AsyncClient,
    owner: Member,
    owner_token: str,
    artifacts: dict[str, bytes],
    app: FastAPI,
    make_member: MakeMember,
) -> None:
    digest = await _registered_lightgbm(client, owner_token, artifacts)
    path = stored_path(app, digest)
    good = path.read_bytes()
    path.write_bytes(good.replace(b"tree", b"TREE", 1))
    checked = await client.post("/v1/models/lgbm/versions/1/verify", headers=auth(owner_token))
    assert checked.status_code == 200
    assert checked.json()["status"] == "unhealthy"
    assert "integrity" in checked.json()["status_reason"]
    # The cached scorer stops serving at once.
    assert (await predict(client, owner_token, "lgbm")).status_code == 503
    path.write_bytes(good)
    restored = await client.post("/v1/models/lgbm/versions/1/verify", headers=auth(owner_token))
    assert restored.json()["status"] == "healthy"
    assert restored.json()["status_reason"] is None
    assert (await predict(client, owner_token, "lgbm")).status_code == 200
    [failed] = await events(app, "model.verification_failed")
    [healthy] = await events(app, "model.healthy")
    assert failed.actor_kind == "user"
    assert healthy.details["previous_reason"].startswith("artifact integrity check failed")
    viewer = await make_member(role="viewer", org_slug=owner.org_slug)
    viewer_token = (await login(client, viewer))["access_token"]
    forbidden = await client.post("/v1/models/lgbm/versions/1/verify", headers=auth(viewer_token))
    assert forbidden.status_code == 403


# --- revocation --------------------------------------------------------------------------


async def test_revoking_a_key_stops_its_versions_and_the_ensembles_using_them(
    client: httpx.AsyncClient, owner_token: str, artifacts: dict[str, bytes], app: FastAPI
) -> None:
    key = generate_publisher_key()
    fingerprint = await trust(client, owner_token, public_key_base64(key.public_key()))
    await create(client, owner_token, "signed")
    data = artifacts["lightgbm"]
    signature = encode_signature(sign_artifact(data, key))
    assert (
        await upload(client, owner_token, "signed", data, signature=signature)
    ).status_code == 201
    assert (await point(client, owner_token, "signed", 1)).status_code == 200
    await create(client, owner_token, "combined", kind="ensemble")
    ensemble = {
        "schema": tiny_schema_document(),
        "spec": {"kind": "ensemble", "components": [{"model": "signed", "weight": 1.0}]},
    }
    added = await client.post(
        "/v1/models/combined/versions",
        data={"manifest": json.dumps(ensemble)},
        headers=auth(owner_token),
    )
    assert added.status_code == 201, added.text
    assert (await point(client, owner_token, "combined", 1)).status_code == 200
    assert (await predict(client, owner_token, "signed")).status_code == 200
    assert (await predict(client, owner_token, "combined")).status_code == 200

    revoked = await client.delete(
        f"/v1/org/publisher-keys/{fingerprint}", headers=auth(owner_token)
    )
    assert revoked.status_code == 204
    for name in ("signed", "combined"):
        response = await predict(client, owner_token, name)
        assert response.status_code == 503, name
    assert "revoked" in (await predict(client, owner_token, "signed")).json()["detail"]
    info = await client.get("/v1/system/info", headers=auth(owner_token))
    status = {m["model"]: m["status"] for m in info.json()["models"]}
    assert status == {"signed": "unhealthy", "combined": "unhealthy"}
    assert {m["model"] for m in info.json()["loaded_models"]}.isdisjoint({"signed", "combined"})

    # Trusting the key again and verifying brings both back.
    assert await trust(client, owner_token, public_key_base64(key.public_key())) == fingerprint
    verified = await client.post("/v1/models/signed/versions/1/verify", headers=auth(owner_token))
    assert verified.json()["status"] == "healthy"
    assert (await predict(client, owner_token, "signed")).status_code == 200
    assert (await predict(client, owner_token, "combined")).status_code == 200
    assert (await status_of(client, owner_token, "combined"))[1] == ("healthy", None)


async def test_a_key_is_trusted_once(client: httpx.AsyncClient, owner_token: str) -> None:
    public = public_key_base64(generate_publisher_key().public_key())
    await trust(client, owner_token, public)
    again = await client.post(
        "/v1/org/publisher-keys",
        json={"name": "again", "public_key": public},
        headers=auth(owner_token),
    )
    assert again.status_code == 409
    listed = await client.get("/v1/org/publisher-keys", headers=auth(owner_token))
    assert len(listed.json()) == 1


# --- ensembles, deletion, batches, the cache ---------------------------------------------


async def test_ensemble_components_can_be_pinned_through_an_alias(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    await register_rules_model(client, owner_token, name="pillar")
    changed = copy.deepcopy(RULES_MANIFEST)
    changed["spec"]["rules"]["rules"][0]["points"] = 5
    second = await client.post(
        "/v1/models/pillar/versions",
        data={"manifest": json.dumps(changed)},
        headers=auth(owner_token),
    )
    assert second.json()["version"] == 2
    assert (await point(client, owner_token, "pillar", 2, "staging")).status_code == 200
    await create(client, owner_token, "mix", kind="ensemble")

    def ensemble(component: dict[str, Any]) -> dict[str, Any]:
        return {
            "schema": RULES_MANIFEST["schema"],
            "spec": {"kind": "ensemble", "components": [{"weight": 1.0, **component}]},
        }

    for component, pinned in (
        ({"model": "pillar"}, 1),
        ({"model": "pillar", "alias": "staging"}, 2),
        ({"model": "pillar", "version": 1}, 1),
    ):
        response = await client.post(
            "/v1/models/mix/versions",
            data={"manifest": json.dumps(ensemble(component))},
            headers=auth(owner_token),
        )
        assert response.status_code == 201, response.text
        async with app.state.database.sessionmaker() as db:
            row = (
                await db.execute(
                    across_tenants(
                        select(ModelVersion)
                        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
                        .where(
                            RegisteredModel.name == "mix",
                            ModelVersion.version == response.json()["version"],
                        ),
                        "test reads a version",
                    )
                )
            ).scalar_one()
        assert row.definition["pinned_components"] == {"pillar": pinned}
    both = await client.post(
        "/v1/models/mix/versions",
        data={
            "manifest": json.dumps(ensemble({"model": "pillar", "alias": "staging", "version": 1}))
        },
        headers=auth(owner_token),
    )
    assert both.status_code == 422
    unknown = await client.post(
        "/v1/models/mix/versions",
        data={"manifest": json.dumps(ensemble({"model": "pillar", "alias": "canary"}))},
        headers=auth(owner_token),
    )
    assert unknown.status_code == 422
    assert "canary" in unknown.json()["detail"]


async def test_a_deleted_model_leaves_the_cache(
    client: httpx.AsyncClient, owner_token: str, artifacts: dict[str, bytes], app: FastAPI
) -> None:
    await _registered_lightgbm(client, owner_token, artifacts)
    assert (await predict(client, owner_token, "lgbm")).status_code == 200
    assert len(app.state.registry.cache.loaded()) == 1
    deleted = await client.delete("/v1/models/lgbm", headers=auth(owner_token))
    assert deleted.status_code == 204
    assert app.state.registry.cache.loaded() == []
    assert (await predict(client, owner_token, "lgbm")).status_code == 404
    assert (await client.get("/v1/models/lgbm", headers=auth(owner_token))).status_code == 404
    [event] = await events(app, "model.deleted")
    assert event.details == {"name": "lgbm"}
    # Soft: the rows stay for the record.
    assert await model_count(app) == 1


async def test_a_batch_row_that_is_not_an_object_is_that_rows_error(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    response = await client.post(
        "/v1/models/fraud-rules/predict",
        json={"records": [{"amount": 5000, "country": "GB"}, 5, ["x"], None]},
        headers=auth(owner_token),
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert "score" in results[0]
    for row in results[1:]:
        assert row["errors"] == [{"field": None, "code": "type", "message": "must be an object"}]
    strict = await client.post(
        "/v1/models/fraud-rules/predict?strict=true",
        json={"records": [{"amount": 5000, "country": "GB"}, 5]},
        headers=auth(owner_token),
    )
    assert strict.status_code == 422
    assert strict.json()["errors"][0]["field"] == "records.1"


def _big_lightgbm(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, 4))
    y = (x[:, 0] + rng.normal(size=2000) > 0).astype(int)
    booster = lightgbm.train(
        {
            "objective": "binary",
            "num_leaves": 31,
            "min_data_in_leaf": 5,
            "verbose": -1,
            "num_threads": 1,
            "seed": seed,
        },
        lightgbm.Dataset(x, label=y, feature_name=["a", "b", "c", "d"]),
        num_boost_round=250,
    )
    return str(booster.model_to_string()).encode()


async def test_the_cache_evicts_least_recently_used_versions_by_artifact_bytes(
    client: httpx.AsyncClient, owner: Member, settings: Settings
) -> None:
    small = create_app(settings.model_copy(update={"model_cache_max_bytes": 1_048_576}))
    first, second = _big_lightgbm(1), _big_lightgbm(2)
    assert 600_000 < len(first) < 1_048_576
    assert len(first) + len(second) > 1_048_576
    async with small.router.lifespan_context(small):
        transport = httpx.ASGITransport(app=small, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            token = (await login(http, owner))["access_token"]
            cache = small.state.registry.cache
            for name, data in (("first", first), ("second", second)):
                await create(http, token, name)
                assert (await upload(http, token, name, data)).status_code == 201
                assert (await point(http, token, name, 1)).status_code == 200
            # Registering the second pushed the first out: the two do not fit together.
            assert [e.scorer.name for e in cache.loaded()] == ["second"]
            assert cache.loaded_bytes == len(second)
            assert (await predict(http, token, "first")).status_code == 200
            assert [e.scorer.name for e in cache.loaded()] == ["first"]
            assert (await predict(http, token, "second")).status_code == 200
            assert [e.scorer.name for e in cache.loaded()] == ["second"]
