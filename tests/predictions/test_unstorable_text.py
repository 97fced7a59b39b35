"""Text no database stores never reaches scoring or the records: U+0000 and unpaired
UTF-16 surrogates are refused with a 422 wherever a request can carry them (JSON bodies,
with or without a Content-Type on the Open Inference Protocol, and binary BYTES tensors).

Before these checks, on PostgreSQL a NUL or a lone surrogate turned into a 500, and a
record holding one was accepted and then failed the buffered flush, or broke every
page of GET /v1/predictions it appeared on.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from assay.core.tenancy import across_tenants
from assay.predictions.models import PredictionRecord
from tests.oip.test_oip import binary_bytes, binary_input, post_binary, tensor
from tests.support.models import RULES_MANIFEST, auth, register_rules_model

NAMED = copy.deepcopy(RULES_MANIFEST)
NAMED["schema"]["fields"].append(
    {"name": "company_name", "type": "string", "required": False, "max_length": 200}
)
VALID = '{"amount": 10, "country": "US", "company_name": "Acme"}'


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("body", code)], errors


async def _post(client: httpx.AsyncClient, token: str, body: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/v1/models/named/predict",
        content=body.encode(),
        headers={"content-type": "application/json", **auth(token), **headers},
    )


async def _stored(app: FastAPI) -> list[PredictionRecord]:
    await app.state.predictions.recorder.flush()
    assert app.state.predictions.recorder.pending == 0  # nothing stuck in the buffer
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(across_tenants(select(PredictionRecord), "test reads records"))
        return list(rows.scalars())


async def test_surrogates_and_nul_in_predict_records_are_refused_and_never_recorded(
    app: FastAPI, client: httpx.AsyncClient, owner_token: str
) -> None:
    deployed = await register_rules_model(client, owner_token, name="named", manifest=NAMED)
    assert deployed.status_code == 201, deployed.text
    # A field name that is a lone surrogate: once a 500 while reporting the row error
    # (batch) or while rendering the 422 (single record).
    assert_refused(
        await _post(client, owner_token, '{"records": [{"\\ud800": 1}]}'),
        "json_unpaired_surrogate",
    )
    assert_refused(
        await _post(client, owner_token, '{"record": {"\\ud800": 1}}'), "json_unpaired_surrogate"
    )
    # A value: once scored, answered 200 and stored, after which every page of
    # GET /v1/predictions holding it was a 500.
    for value, code in (
        ("\\ud800", "json_unpaired_surrogate"),
        ("Acme\\udfff", "json_unpaired_surrogate"),
        ("Ac\\u0000me", "json_nul_character"),
    ):
        record = f'{{"amount": 10, "country": "US", "company_name": "{value}"}}'
        assert_refused(await _post(client, owner_token, f'{{"record": {record}}}'), code)
        batch = f'{{"records": [{VALID}, {record}]}}'
        assert_refused(await _post(client, owner_token, batch), code)
    scored = await _post(client, owner_token, f'{{"record": {VALID}}}')
    assert scored.status_code == 200, scored.text
    [stored] = await _stored(app)
    assert stored.inputs["company_name"] == "Acme"
    page = await client.get("/v1/predictions", headers=auth(owner_token))
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 1


async def test_open_inference_requests_are_held_to_the_same_rule(
    app: FastAPI, client: httpx.AsyncClient, owner_token: str
) -> None:
    deployed = await register_rules_model(client, owner_token, name="named", manifest=NAMED)
    assert deployed.status_code == 201, deployed.text
    inputs = [tensor("amount", "FP64", [10.0]), tensor("country", "BYTES", ["US"])]
    for escape, code in (("\\u0000", "json_nul_character"), ("\\ud800", "json_unpaired_surrogate")):
        text = json.dumps({"inputs": [*inputs, tensor("company_name", "BYTES", ["Acme"])]}).replace(
            "Acme", f"Ac{escape}me"
        )
        # OIP clients may send no Content-Type: the body is JSON all the same.
        for headers in ({"content-type": "application/json"}, {}):
            response = await client.post(
                "/v2/models/named/infer",
                content=text.encode(),
                headers={**auth(owner_token), **headers},
            )
            assert_refused(response, code)

    # BYTES elements in binary tensor data are UTF-8, where a NUL is one byte.
    def binary_header(raw: bytes) -> dict[str, Any]:
        return {"inputs": [*inputs, binary_input("company_name", "BYTES", raw, [1])]}

    raw = binary_bytes(["Ac\x00me"])
    binary = await post_binary(client, owner_token, binary_header(raw), raw, path="named")
    assert binary.status_code == 422, binary.text
    [error] = binary.json()["errors"]
    assert error["field"] == "inputs.company_name"
    assert "U+0000" in error["message"]
    raw = binary_bytes(["Acme"])
    fine = await post_binary(client, owner_token, binary_header(raw), raw, path="named")
    assert fine.status_code == 200, fine.text
    assert [r.inputs for r in await _stored(app)] == [
        {"amount": 10.0, "country": "US", "company_name": "Acme"}
    ]
