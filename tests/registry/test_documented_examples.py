"""The walk-through in docs/models.md and the OIP example in docs/inference.md, run as
written: the documented manifests register, load and score, and the documented OIP
request gives the documented answer."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import httpx
import lightgbm
import numpy as np
import yaml
from fastapi import FastAPI
from sqlalchemy import select

from assay.core.tenancy import across_tenants
from assay.engine.integrity import (
    encode_signature,
    generate_publisher_key,
    public_key_base64,
    sign_artifact,
)
from assay.predictions.models import PredictionRecord
from tests.support.models import auth

DOCS = Path(__file__).resolve().parents[2] / "docs"
MANIFEST = re.compile(r"<!-- manifest: (?P<name>[a-z0-9-]+) -->\n```yaml\n(?P<body>.*?)```", re.S)
OIP_EXAMPLE = re.compile(
    r"curl -s -X POST \"http://127\.0\.0\.1:8000(?P<path>/v2/models/[a-z-]+/infer)\".*?"
    r"-d '(?P<body>.*?)'\n(?P<answer>(?:# [^\n]*\n)+)",
    re.S,
)


def documented_manifests() -> dict[str, dict[str, Any]]:
    text = (DOCS / "models.md").read_text(encoding="utf-8")
    found = {m["name"]: yaml.safe_load(m["body"]) for m in MANIFEST.finditer(text)}
    assert list(found) == ["fraud-rules", "fraud-lgbm", "payment-risk"]
    return found


def train_fraud_lgbm() -> bytes:
    """A LightGBM model on the columns the documented features list gives."""
    rng = np.random.default_rng(5)
    amount = rng.uniform(0, 10_000, 600)
    country = rng.integers(0, 3, 600)
    x = np.column_stack([amount, country == 0, country == 1, country == 2]).astype(float)
    y = ((amount > 3000) | (country == 1)).astype(int)
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 1},
        lightgbm.Dataset(
            x, label=y, feature_name=["amount", "country=US", "country=GB", "country=DE"]
        ),
        num_boost_round=20,
    )
    return str(booster.model_to_string()).encode()


async def register(
    client: httpx.AsyncClient,
    token: str,
    name: str,
    manifest: dict[str, Any],
    files: dict[str, Any] | None = None,
    signature: str | None = None,
) -> dict[str, Any]:
    created = await client.post(
        "/v1/models", json={"name": name, "kind": manifest["spec"]["kind"]}, headers=auth(token)
    )
    assert created.status_code == 201, created.text
    data = {"manifest": yaml.safe_dump(manifest)}
    if signature is not None:
        data["signature"] = signature
    version = await client.post(
        f"/v1/models/{name}/versions", data=data, files=files, headers=auth(token)
    )
    assert version.status_code == 201, version.text
    moved = await client.put(
        f"/v1/models/{name}/aliases/production", json={"version": 1}, headers=auth(token)
    )
    assert moved.status_code == 200, moved.text
    body: dict[str, Any] = version.json()
    return body


async def test_the_models_walk_through_runs_as_written(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    manifests = documented_manifests()
    await register(client, owner_token, "fraud-rules", manifests["fraud-rules"])
    key = generate_publisher_key()
    trusted = await client.post(
        "/v1/org/publisher-keys",
        json={"name": "ml team", "public_key": public_key_base64(key.public_key())},
        headers=auth(owner_token),
    )
    assert trusted.status_code == 201
    artifact = train_fraud_lgbm()
    lgbm = await register(
        client,
        owner_token,
        "fraud-lgbm",
        manifests["fraud-lgbm"],
        files={"artifact": ("fraud.txt", artifact)},
        signature=encode_signature(sign_artifact(artifact, key)),
    )
    assert lgbm["signed_by"] == trusted.json()["fingerprint"]
    assert lgbm["artifact_format"] == "lightgbm"
    await register(client, owner_token, "payment-risk", manifests["payment-risk"])

    response = await client.post(
        "/v1/models/payment-risk/predict",
        json={"record": {"amount": 5000, "country": "GB", "email": "pay@example.org"}},
        headers=auth(owner_token),
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["label"] in {"PASS", "CONDITIONAL PASS", "FAIL"}
    components = result["explanation"]["components"]
    assert [c["name"] for c in components] == ["fraud-lgbm", "fraud-rules"]
    assert math.isclose(sum(c["contribution"] for c in components), result["score"])
    # fraud-rules scores this record 1.0; its documented cap holds it to 0.9.
    rules = components[1]
    assert rules["score"] == 1.0
    assert rules["effective_score"] == 0.9

    # records: {pii: drop} — the email is not kept, sealed or otherwise.
    await app.state.predictions.recorder.flush()
    async with app.state.database.sessionmaker() as db:
        [record] = (
            await db.execute(across_tenants(select(PredictionRecord), "test reads records"))
        ).scalars()
    assert record.inputs == {"amount": 5000, "country": "GB"}
    assert record.inputs_encrypted is None


async def test_the_documented_oip_request_gives_the_documented_answer(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register(client, owner_token, "fraud-rules", documented_manifests()["fraud-rules"])
    example = OIP_EXAMPLE.search((DOCS / "inference.md").read_text(encoding="utf-8"))
    assert example is not None
    answer = json.loads("".join(line[2:] for line in example["answer"].splitlines()))
    response = await client.post(
        example["path"], content=example["body"].encode(), headers=auth(owner_token)
    )
    assert response.status_code == 200, response.text
    assert response.json() == answer
