from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.support.identity import MakeMember, Member, login
from tests.support.models import RULES_MANIFEST, auth, register_rules_model


async def test_register_alias_and_predict_one_record(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    version = await register_rules_model(client, owner_token)
    assert version.status_code == 201, version.text
    assert version.json()["version"] == 1
    response = await client.post(
        "/v1/models/fraud-rules/predict",
        json={"record": {"amount": 5000, "country": "GB", "email": "ada@example.org"}},
        headers=auth(owner_token),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "fraud-rules"
    assert body["model"]["version"] == 1
    assert len(body["model"]["digest"]) == 64
    assert body["request_id"] == response.headers["x-request-id"]
    [result] = body["results"]
    assert 0.0 <= result["score"] <= 1.0
    assert result["label"] in {"PASS", "CONDITIONAL PASS", "FAIL"}
    fired = {rule["rule"] for rule in result["explanation"]["fired"]}
    assert fired == {"big", "gb"}


async def test_invalid_single_record_is_a_422_naming_each_field(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    response = await client.post(
        "/v1/models/fraud-rules/predict",
        json={"record": {"amount": -5, "country": "FR"}},
        headers=auth(owner_token),
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"records.0.amount", "records.0.country"} <= fields


async def test_batch_reports_row_errors_in_order_unless_strict(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    rows = [
        {"amount": 10, "country": "US"},
        {"amount": "lots", "country": "US"},
        {"amount": 2000, "country": "DE"},
    ]
    response = await client.post(
        "/v1/models/fraud-rules/predict", json={"records": rows}, headers=auth(owner_token)
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert "errors" in results[1]
    assert "score" in results[0]
    assert "score" in results[2]
    strict = await client.post(
        "/v1/models/fraud-rules/predict?strict=true",
        json={"records": rows},
        headers=auth(owner_token),
    )
    assert strict.status_code == 422


async def test_records_are_kept_with_pii_encrypted(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    await register_rules_model(client, owner_token)
    await client.post(
        "/v1/models/fraud-rules/predict",
        json={"record": {"amount": 5000, "country": "GB", "email": "grace@example.org"}},
        headers=auth(owner_token),
    )
    await app.state.predictions.recorder.flush()
    page = await client.get("/v1/predictions?model=fraud-rules", headers=auth(owner_token))
    assert page.status_code == 200
    [item] = page.json()["items"]
    assert item["inputs"] == {"amount": 5000, "country": "GB"}
    assert "grace@example.org" not in page.text
    from sqlalchemy import select

    from assay.core.tenancy import across_tenants
    from assay.predictions.models import PredictionRecord
    from assay.predictions.records import read_private_inputs

    async with app.state.database.sessionmaker() as db:
        record = (await db.execute(across_tenants(select(PredictionRecord), "test"))).scalar_one()
    assert record.inputs_encrypted is not None
    assert b"grace@example.org" not in record.inputs_encrypted
    assert read_private_inputs(app.state.identity.keyring, record) == {"email": "grace@example.org"}


async def test_aliases_move_and_roll_back(client: httpx.AsyncClient, owner_token: str) -> None:
    await register_rules_model(client, owner_token)
    changed = {**RULES_MANIFEST, "spec": {**RULES_MANIFEST["spec"]}}
    changed["spec"]["rules"] = {
        "rules": [{"id": "any", "when": {"field": "amount", "op": ">=", "value": 0}, "points": 1}]
    }
    import json

    second = await client.post(
        "/v1/models/fraud-rules/versions",
        data={"manifest": json.dumps(changed)},
        headers=auth(owner_token),
    )
    assert second.json()["version"] == 2
    staging = await client.put(
        "/v1/models/fraud-rules/aliases/staging", json={"version": 2}, headers=auth(owner_token)
    )
    assert staging.status_code == 200
    on_staging = await client.post(
        "/v1/models/fraud-rules/predict?alias=staging",
        json={"record": {"amount": 1, "country": "US"}},
        headers=auth(owner_token),
    )
    assert on_staging.json()["model"]["version"] == 2
    on_production = await client.post(
        "/v1/models/fraud-rules/predict",
        json={"record": {"amount": 1, "country": "US"}},
        headers=auth(owner_token),
    )
    assert on_production.json()["model"]["version"] == 1
    pinned = await client.post(
        "/v1/models/fraud-rules/predict?version=2",
        json={"record": {"amount": 1, "country": "US"}},
        headers=auth(owner_token),
    )
    assert pinned.json()["model"]["version"] == 2
    detail = await client.get("/v1/models/fraud-rules", headers=auth(owner_token))
    assert detail.json()["aliases"] == {"production": 1, "staging": 2}
    assert [v["version"] for v in detail.json()["versions"]] == [1, 2]
    missing = await client.put(
        "/v1/models/fraud-rules/aliases/production", json={"version": 9}, headers=auth(owner_token)
    )
    assert missing.status_code == 404


async def test_bad_definitions_point_at_the_problem(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    broken = {**RULES_MANIFEST, "spec": {**RULES_MANIFEST["spec"]}}
    broken["spec"]["rules"] = {
        "rules": [
            {"id": "x", "when": {"field": "no_such_field", "op": ">=", "value": 1}, "points": 1}
        ]
    }
    response = await register_rules_model(client, owner_token, manifest=broken)
    assert response.status_code == 422
    assert "no_such_field" in response.text
    garbage = await client.post(
        "/v1/models/fraud-rules/versions",
        data={"manifest": "{not: [valid"},
        headers=auth(owner_token),
    )
    assert garbage.status_code == 422


async def test_predict_needs_the_predict_permission(
    client: httpx.AsyncClient, owner_token: str, make_member: MakeMember, owner: Member
) -> None:
    await register_rules_model(client, owner_token)
    viewer = await make_member(role="viewer", org_slug=owner.org_slug)
    token = (await login(client, viewer))["access_token"]
    denied = await client.post(
        "/v1/models/fraud-rules/predict",
        json={"record": {"amount": 1, "country": "US"}},
        headers=auth(token),
    )
    assert denied.status_code == 403
    assert (await client.get("/v1/models", headers=auth(token))).status_code == 200
    no_auth = await client.post(
        "/v1/models/fraud-rules/predict", json={"record": {"amount": 1, "country": "US"}}
    )
    assert no_auth.status_code == 401


async def test_system_info_lists_loaded_models_and_health(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    info = await client.get("/v1/system/info", headers=auth(owner_token))
    assert info.status_code == 200
    body = info.json()
    assert body["models"][0]["model"] == "fraud-rules"
    assert body["models"][0]["status"] == "healthy"
    assert body["models"][0]["loaded"] is True


async def test_publisher_keys_are_managed_over_the_api(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    from assay.engine.integrity import generate_publisher_key, public_key_base64

    public = public_key_base64(generate_publisher_key().public_key())
    created = await client.post(
        "/v1/org/publisher-keys",
        json={"name": "ml team", "public_key": public},
        headers=auth(owner_token),
    )
    assert created.status_code == 201, created.text
    fingerprint = created.json()["fingerprint"]
    assert fingerprint.startswith("ed25519:")
    duplicate = await client.post(
        "/v1/org/publisher-keys",
        json={"name": "again", "public_key": public},
        headers=auth(owner_token),
    )
    assert duplicate.status_code == 409
    bad = await client.post(
        "/v1/org/publisher-keys",
        json={"name": "bad", "public_key": "A" * 44},
        headers=auth(owner_token),
    )
    assert bad.status_code == 422
    listed = await client.get("/v1/org/publisher-keys", headers=auth(owner_token))
    assert [k["fingerprint"] for k in listed.json()] == [fingerprint]
    revoked = await client.delete(
        f"/v1/org/publisher-keys/{fingerprint}", headers=auth(owner_token)
    )
    assert revoked.status_code == 204
    listed = await client.get("/v1/org/publisher-keys", headers=auth(owner_token))
    assert listed.json()[0]["revoked_at"] is not None


async def test_version_numbers_beyond_the_column_are_a_422_not_a_database_error(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    huge = "371281638231621792432128"
    answers = [
        await client.get(f"/v1/models/fraud-rules/versions/{huge}", headers=auth(owner_token)),
        await client.post(
            f"/v1/models/fraud-rules/versions/{huge}/verify", headers=auth(owner_token)
        ),
        await client.post(
            f"/v1/models/fraud-rules/predict?version={huge}",
            json={"record": {"amount": 5, "country": "GB"}},
            headers=auth(owner_token),
        ),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    # The largest number the column holds is a valid question: no such version.
    biggest = await client.get(
        "/v1/models/fraud-rules/versions/2147483647", headers=auth(owner_token)
    )
    assert biggest.status_code == 404
