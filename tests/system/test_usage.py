"""GET /v1/system/usage: an organisation's own scoring, never another's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from tests.support.identity import MakeMember, bearer, login
from tests.support.models import auth, register_rules_model

RECORD = {"amount": 2500, "country": "GB"}


async def test_usage_counts_this_organisations_predictions_only(
    client: httpx.AsyncClient, app: FastAPI, make_member: MakeMember
) -> None:
    a = await make_member(role="owner")
    b = await make_member(role="owner")
    token_a = (await login(client, a))["access_token"]
    token_b = (await login(client, b))["access_token"]
    assert (await register_rules_model(client, token_a)).status_code == 201
    for _ in range(3):
        scored = await client.post(
            "/v1/models/fraud-rules/predict", json={"record": RECORD}, headers=auth(token_a)
        )
        assert scored.status_code == 200, scored.text
    # Records are written in batches; flush them as the timer or shutdown would.
    await app.state.predictions.recorder.flush()
    mine = await client.get("/v1/system/usage", headers=bearer(token_a))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["predictions"] == 3
    assert [(m["model"], m["version"], m["predictions"]) for m in body["models"]] == [
        ("fraud-rules", 1, 3)
    ]
    theirs = await client.get("/v1/system/usage", headers=bearer(token_b))
    assert theirs.json()["predictions"] == 0
    assert theirs.json()["models"] == []
    # A window before the predictions holds none of them.
    until = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    earlier = await client.get("/v1/system/usage", params={"until": until}, headers=bearer(token_a))
    assert earlier.status_code == 200, earlier.text
    assert earlier.json()["predictions"] == 0
