"""Open Inference Protocol (KServe V2) REST: metadata, health, tensors in and out, errors,
and the real Triton HTTP client against a live server process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from assay import __version__
from assay.http.problems import PROBLEM_CONTENT_TYPE
from assay.settings import Settings
from tests.support.identity import MakeMember, Member, login
from tests.support.models import RULES_MANIFEST, auth, register_rules_model

from ..conftest import KNOWN_SECRETS

NUMERIC_MANIFEST: dict[str, Any] = {
    "schema": {
        "fields": [
            {"name": "label_hint", "type": "string", "required": False, "max_length": 20},
            {"name": "amount", "type": "number", "minimum": 0},
            {"name": "items", "type": "integer", "minimum": 0, "maximum": 1000},
            {"name": "vip", "type": "boolean", "default": False},
            {"name": "per_item", "type": "number", "derive": {"expr": "amount / 2.0"}},
        ]
    },
    "spec": {
        "kind": "rules",
        "rules": {
            "rules": [
                {"id": "big", "when": {"field": "amount", "op": ">=", "value": 100}, "points": 2},
                {"id": "many", "when": {"field": "items", "op": ">=", "value": 10}, "points": 1},
            ]
        },
        "bands": {"risk": [{"label": "high", "below": 0.5}, {"label": "low"}]},
    },
}


def tensor(
    name: str, datatype: str, data: list[Any], shape: list[int] | None = None
) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def rules_inputs(amounts: list[float], countries: list[str]) -> list[dict[str, Any]]:
    return [tensor("amount", "FP64", amounts), tensor("country", "BYTES", countries)]


async def infer(
    client: httpx.AsyncClient, token: str, body: dict[str, Any], path: str = "fraud-rules"
) -> httpx.Response:
    return await client.post(f"/v2/models/{path}/infer", json=body, headers=auth(token))


# --- server ------------------------------------------------------------------------------


async def test_health_is_public_and_metadata_needs_credentials(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    live = await client.get("/v2/health/live")
    assert (live.status_code, live.json()) == (200, {"live": True})
    ready = await client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    anonymous = await client.get("/v2")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert anonymous.json()["error"]  # OIP clients read `error`
    server = await client.get("/v2", headers=auth(owner_token))
    assert server.status_code == 200
    assert server.json() == {
        "name": "assay",
        "version": __version__,
        "extensions": ["binary_tensor_data"],
    }


# --- model metadata and readiness --------------------------------------------------------


async def test_model_metadata_follows_the_input_schema_in_order(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    response = await client.get("/v2/models/fraud-rules", headers=auth(owner_token))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": "fraud-rules",
        "versions": ["1"],
        "platform": "assay-rules",
        "inputs": [
            {"name": "amount", "datatype": "FP64", "shape": [-1]},
            {"name": "country", "datatype": "BYTES", "shape": [-1]},
            {"name": "email", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [-1]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "risk", "datatype": "BYTES", "shape": [-1]},
        ],
    }


async def test_versions_are_addressed_by_number_or_alias(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    changed = json.loads(json.dumps(RULES_MANIFEST))
    changed["schema"]["fields"].append({"name": "channel", "type": "integer", "default": 0})
    second = await client.post(
        "/v1/models/fraud-rules/versions",
        data={"manifest": json.dumps(changed)},
        headers=auth(owner_token),
    )
    assert second.status_code == 201, second.text
    staged = await client.put(
        "/v1/models/fraud-rules/aliases/staging", json={"version": 2}, headers=auth(owner_token)
    )
    assert staged.status_code == 200
    by_number = await client.get("/v2/models/fraud-rules/versions/2", headers=auth(owner_token))
    by_alias = await client.get(
        "/v2/models/fraud-rules/versions/staging", headers=auth(owner_token)
    )
    production = await client.get("/v2/models/fraud-rules", headers=auth(owner_token))
    assert by_number.json() == by_alias.json()
    assert by_number.json()["versions"] == ["1", "2"]
    assert by_number.json()["inputs"][-1] == {"name": "channel", "datatype": "INT64", "shape": [-1]}
    assert [i["name"] for i in production.json()["inputs"]] == ["amount", "country", "email"]
    for missing in ("/v2/models/fraud-rules/versions/9", "/v2/models/fraud-rules/versions/NOPE!"):
        response = await client.get(missing, headers=auth(owner_token))
        assert response.status_code == 404
        assert response.json()["error"]
    unknown = await client.get("/v2/models/no-such-model", headers=auth(owner_token))
    assert unknown.status_code == 404
    ready = await client.get("/v2/models/fraud-rules/versions/2/ready", headers=auth(owner_token))
    assert ready.json() == {"name": "fraud-rules", "ready": True}
    assert (await client.get("/v2/models/fraud-rules/ready", headers=auth(owner_token))).json()[
        "ready"
    ]
    pinned = await client.post(
        "/v2/models/fraud-rules/versions/staging/infer",
        json={"inputs": rules_inputs([5.0], ["US"])},
        headers=auth(owner_token),
    )
    assert pinned.json()["model_version"] == "2"


# --- inference ---------------------------------------------------------------------------


async def test_one_tensor_per_field_scores_like_the_native_api(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    amounts, countries = [5000.0, 10.0, 1500.0], ["GB", "US", "DE"]
    response = await infer(
        client, owner_token, {"id": "my-request-7", "inputs": rules_inputs(amounts, countries)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "fraud-rules"
    assert body["model_version"] == "1"
    assert body["id"] == "my-request-7"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert [o["name"] for o in body["outputs"]] == ["score", "label", "risk"]
    assert outputs["score"]["datatype"] == "FP64"
    assert outputs["label"]["datatype"] == outputs["risk"]["datatype"] == "BYTES"
    assert all(o["shape"] == [3] for o in body["outputs"])
    native = await client.post(
        "/v1/models/fraud-rules/predict",
        json={
            "records": [
                {"amount": a, "country": c} for a, c in zip(amounts, countries, strict=True)
            ]
        },
        headers=auth(owner_token),
    )
    expected = native.json()["results"]
    assert outputs["score"]["data"] == [r["score"] for r in expected]
    assert outputs["label"]["data"] == [r["label"] for r in expected]
    # No risk bands in this model: an empty string per row.
    assert outputs["risk"]["data"] == ["", "", ""]


async def test_shapes_n_by_one_nested_data_and_no_content_type_are_accepted(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    body = {
        "inputs": [
            tensor("amount", "INT32", [[5000], [10]], shape=[2, 1]),
            tensor("country", "BYTES", [["GB"], ["US"]], shape=[2, 1]),
        ],
        "outputs": [{"name": "label"}],
        "parameters": {"priority": 1, "tenant_hint": "anything"},
    }
    response = await client.post(
        "/v2/models/fraud-rules/infer", content=json.dumps(body).encode(), headers=auth(owner_token)
    )
    assert response.status_code == 200, response.text
    [label] = response.json()["outputs"]
    assert label["name"] == "label"
    assert label["data"][0] in {"PASS", "CONDITIONAL PASS", "FAIL"}
    # Without an `id` in the request, the response carries the request id.
    assert response.json()["id"] == response.headers["x-request-id"]


async def test_a_matrix_carries_the_numeric_fields_in_schema_order(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token, name="basket", manifest=NUMERIC_MANIFEST)
    matrix = tensor("features", "FP32", [[150.0, 12.0], [5.0, 1.0]], shape=[2, 2])
    response = await infer(client, owner_token, {"inputs": [matrix]}, path="basket")
    assert response.status_code == 200, response.text
    per_field = await infer(
        client,
        owner_token,
        {"inputs": [tensor("amount", "FP64", [150.0, 5.0]), tensor("items", "INT64", [12, 1])]},
        path="basket",
    )
    assert response.json()["outputs"] == per_field.json()["outputs"]
    scores = response.json()["outputs"][0]["data"]
    assert scores[0] > scores[1]
    flat = await infer(
        client,
        owner_token,
        {"inputs": [tensor("x", "FP64", [150.0, 12.0, 5.0, 1.0], shape=[2, 2])]},
        path="basket",
    )
    assert flat.json()["outputs"] == response.json()["outputs"]
    wrong_width = await infer(
        client,
        owner_token,
        {"inputs": [tensor("x", "FP64", [1.0, 2.0, 3.0], shape=[1, 3])]},
        path="basket",
    )
    assert wrong_width.status_code == 422
    assert "amount, items" in wrong_width.json()["error"]
    fractional = await infer(
        client,
        owner_token,
        {"inputs": [tensor("x", "FP64", [1.0, 2.5], shape=[1, 2])]},
        path="basket",
    )
    assert fractional.status_code == 422
    assert fractional.json()["errors"][0]["field"] == "records.0.items"


async def test_a_matrix_is_refused_when_a_required_field_is_not_numeric(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    response = await infer(
        client, owner_token, {"inputs": [tensor("x", "FP64", [[1.0]], shape=[1, 1])]}
    )
    assert response.status_code == 422
    assert "country" in response.json()["detail"]
    assert response.json()["errors"][0]["code"] == "matrix_not_possible"


async def test_invalid_rows_refuse_the_whole_request_and_nothing_is_recorded(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    await register_rules_model(client, owner_token)
    response = await infer(
        client, owner_token, {"inputs": rules_inputs([10.0, -5.0, 20.0], ["US", "US", "FR"])}
    )
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert {e["field"] for e in body["errors"]} == {"records.1.amount", "records.2.country"}
    assert "records.1.amount" in body["error"]
    await app.state.predictions.recorder.flush()
    page = await client.get("/v1/predictions?model=fraud-rules", headers=auth(owner_token))
    assert page.json()["items"] == []


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ([tensor("amount", "BYTES", ["10"]), tensor("country", "BYTES", ["US"])], "takes FP64"),
        ([tensor("amount", "FP64", [1.0, 2.0]), tensor("country", "BYTES", ["US"])], "rows"),
        ([tensor("amount", "FP64", [1.0], shape=[2])], "does not match shape"),
        ([tensor("amount", "FP64", [1.0]), tensor("colour", "BYTES", ["red"])], "not an input"),
        ([tensor("amount", "INT8", [1000]), tensor("country", "BYTES", ["US"])], "not INT8"),
        ([tensor("amount", "FP64", [True]), tensor("country", "BYTES", ["US"])], "not FP64"),
        ([tensor("amount", "BF16", [1.0]), tensor("country", "BYTES", ["US"])], "takes FP64"),
        ([tensor("amount", "FP64", [[1.0, 2.0]], shape=[1, 2])], "not [N] or [N, 1]"),
        ([tensor("amount", "FP64", []), tensor("country", "BYTES", [])], "no rows"),
    ],
)
async def test_tensors_that_do_not_fit_are_a_422_naming_the_problem(
    client: httpx.AsyncClient, owner_token: str, inputs: list[dict[str, Any]], fragment: str
) -> None:
    await register_rules_model(client, owner_token)
    response = await infer(client, owner_token, {"inputs": inputs})
    assert response.status_code == 422, response.text
    assert fragment in response.json()["error"]


async def test_malformed_requests_and_unknown_outputs_are_422s_with_an_error_member(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    for body in (
        {"inputs": []},
        {"inputs": [{"name": "amount", "datatype": "FP64", "data": [1.0]}]},
        {"inputs": rules_inputs([1.0], ["US"]), "outputs": [{"name": "probability"}]},
    ):
        response = await infer(client, owner_token, body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]
    not_json = await client.post(
        "/v2/models/fraud-rules/infer", content=b"{not json", headers=auth(owner_token)
    )
    assert not_json.status_code == 422


def binary_bytes(values: list[str]) -> bytes:
    """BYTES elements as binary tensor data: a 4-byte little-endian length, then the bytes."""
    return b"".join(len(v.encode()).to_bytes(4, "little") + v.encode() for v in values)


def binary_input(name: str, datatype: str, raw: bytes, shape: list[int]) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": len(raw)},
    }


async def post_binary(
    client: httpx.AsyncClient,
    token: str,
    header: dict[str, Any],
    raw: bytes,
    path: str = "fraud-rules",
    header_length: int | None = None,
) -> httpx.Response:
    encoded = json.dumps(header).encode()
    length = len(encoded) if header_length is None else header_length
    return await client.post(
        f"/v2/models/{path}/infer",
        content=encoded + raw,
        headers={**auth(token), "inference-header-content-length": str(length)},
    )


def read_binary_response(response: httpx.Response) -> dict[str, Any]:
    """The JSON header, with each binary output's data decoded into `data`."""
    length = int(response.headers["inference-header-content-length"])
    header: dict[str, Any] = json.loads(response.content[:length])
    offset = length
    for output in header["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            continue
        raw = response.content[offset : offset + size]
        offset += size
        if output["datatype"] == "BYTES":
            values, at = [], 0
            while at < len(raw):
                n = int.from_bytes(raw[at : at + 4], "little")
                values.append(raw[at + 4 : at + 4 + n].decode())
                at += 4 + n
            output["data"] = values
        else:
            output["data"] = np.frombuffer(raw, dtype="<f8").tolist()
    assert offset == len(response.content)
    return header


async def test_binary_tensor_data_scores_like_json(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    amounts = np.array([5000.0, 10.0, 1500.0])
    countries = ["GB", "US", "DE"]
    amount_raw, country_raw = amounts.astype("<f8").tobytes(), binary_bytes(countries)
    header = {
        "id": "bin-1",
        "inputs": [
            binary_input("amount", "FP64", amount_raw, [3]),
            binary_input("country", "BYTES", country_raw, [3]),
        ],
    }
    as_json = await infer(
        client, owner_token, {"inputs": rules_inputs(amounts.tolist(), countries)}
    )
    assert as_json.status_code == 200
    expected = {o["name"]: o["data"] for o in as_json.json()["outputs"]}

    # Binary in, JSON out.
    response = await post_binary(client, owner_token, header, amount_raw + country_raw)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert {o["name"]: o["data"] for o in response.json()["outputs"]} == expected
    assert response.json()["id"] == "bin-1"

    # Binary in, binary out (every output, as the Triton client asks by default).
    everything = await post_binary(
        client,
        owner_token,
        {**header, "parameters": {"binary_data_output": True}},
        amount_raw + country_raw,
    )
    assert everything.status_code == 200, everything.text
    assert everything.headers["content-type"] == "application/octet-stream"
    decoded = read_binary_response(everything)
    assert decoded["model_name"] == "fraud-rules"
    assert decoded["id"] == "bin-1"
    assert {o["name"]: o["data"] for o in decoded["outputs"]} == expected
    assert all("binary_data_size" in o["parameters"] for o in decoded["outputs"])

    # JSON in, some outputs binary: only those asked for.
    mixed = await infer(
        client,
        owner_token,
        {
            "inputs": rules_inputs(amounts.tolist(), countries),
            "outputs": [
                {"name": "score", "parameters": {"binary_data": True}},
                {"name": "label", "parameters": {"binary_data": False}},
            ],
        },
    )
    assert mixed.status_code == 200
    decoded = read_binary_response(mixed)
    assert [o["name"] for o in decoded["outputs"]] == ["score", "label"]
    assert "parameters" not in decoded["outputs"][1]
    assert decoded["outputs"][0]["data"] == expected["score"]
    assert decoded["outputs"][1]["data"] == expected["label"]


async def test_binary_numbers_integers_and_booleans_reach_the_schema(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token, name="numeric", manifest=NUMERIC_MANIFEST)
    tensors = {
        "amount": ("FP32", np.array([150.0, 5.0], dtype="<f4").tobytes()),
        "items": ("INT32", np.array([12, 1], dtype="<i4").tobytes()),
        "vip": ("BOOL", bytes([1, 0])),
        "label_hint": ("BYTES", binary_bytes(["naïve", ""])),
    }
    header = {"inputs": [binary_input(n, d, raw, [2]) for n, (d, raw) in tensors.items()]}
    raw = b"".join(raw for _, raw in tensors.values())
    response = await post_binary(client, owner_token, header, raw, path="numeric")
    assert response.status_code == 200, response.text
    native = await client.post(
        "/v1/models/numeric/predict",
        json={
            "records": [
                {"amount": 150.0, "items": 12, "vip": True, "label_hint": "naïve"},
                {"amount": 5.0, "items": 1, "vip": False, "label_hint": ""},
            ]
        },
        headers=auth(owner_token),
    )
    scores = [r["score"] for r in native.json()["results"]]
    assert response.json()["outputs"][0]["data"] == scores

    # A NaN sent as binary is refused by the schema, like one sent as JSON.
    nan = np.array([float("nan"), 5.0], dtype="<f4").tobytes()
    refused = await post_binary(
        client,
        owner_token,
        {"inputs": [binary_input("amount", "FP32", nan, [2]), *header["inputs"][1:]]},
        nan + raw[8:],
        path="numeric",
    )
    assert refused.status_code == 422
    assert "records.0.amount" in refused.json()["error"]


async def test_malformed_binary_tensor_data_is_refused_naming_the_problem(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    amount_raw = np.array([5.0]).tobytes()
    country_raw = binary_bytes(["US"])
    header = {
        "inputs": [
            binary_input("amount", "FP64", amount_raw, [1]),
            binary_input("country", "BYTES", country_raw, [1]),
        ]
    }
    whole = amount_raw + country_raw
    cases: list[tuple[httpx.Response, int, str]] = [
        # Fewer bytes follow the header than the inputs declare.
        (await post_binary(client, owner_token, header, whole[:-1]), 400, "declare"),
        # The header length points past the end of the body.
        (
            await post_binary(client, owner_token, header, whole, header_length=10**6),
            400,
            "longer than the body",
        ),
        # binary_data_size without binary data at all.
        (
            await infer(client, owner_token, {"inputs": header["inputs"]}),
            400,
            "no binary data",
        ),
        # A BYTES length prefix that runs past its tensor.
        (
            await post_binary(
                client,
                owner_token,
                {
                    "inputs": [
                        header["inputs"][0],
                        binary_input("country", "BYTES", b"\x09\x00\x00\x00US", [1]),
                    ]
                },
                amount_raw + b"\x09\x00\x00\x00US",
            ),
            422,
            "inputs.country",
        ),
        # Bytes that are not UTF-8 text.
        (
            await post_binary(
                client,
                owner_token,
                {
                    "inputs": [
                        header["inputs"][0],
                        binary_input("country", "BYTES", b"\x02\x00\x00\x00\xff\xfe", [1]),
                    ]
                },
                amount_raw + b"\x02\x00\x00\x00\xff\xfe",
            ),
            422,
            "UTF-8",
        ),
        # An FP64 tensor whose byte count does not fit its shape.
        (
            await post_binary(
                client,
                owner_token,
                {
                    "inputs": [
                        binary_input("amount", "FP64", amount_raw, [2]),
                        header["inputs"][1],
                    ]
                },
                whole,
            ),
            422,
            "needs 16",
        ),
    ]
    for response, status, fragment in cases:
        assert response.status_code == status, response.text
        assert fragment in response.json()["error"], response.json()["error"]
    shared = await infer(
        client,
        owner_token,
        {
            "inputs": rules_inputs([1.0], ["US"]),
            "outputs": [{"name": "score", "parameters": {"shared_memory_region": "r0"}}],
        },
    )
    assert shared.status_code == 400
    gzipped = await client.post(
        "/v2/models/fraud-rules/infer",
        content=b"\x1f\x8b",
        headers={**auth(owner_token), "content-encoding": "gzip"},
    )
    assert gzipped.status_code == 415


async def test_json_limits_apply_without_a_content_type(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    await register_rules_model(client, owner_token)
    deep = b'{"inputs": ' + b"[" * 100 + b"]" * 100 + b"}"
    response = await client.post(
        "/v2/models/fraud-rules/infer", content=deep, headers=auth(owner_token)
    )
    assert response.status_code == 413
    assert response.json()["error"]


async def test_predictions_through_oip_are_recorded_like_native_ones(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI
) -> None:
    await register_rules_model(client, owner_token)
    inputs = [*rules_inputs([5000.0], ["GB"]), tensor("email", "BYTES", ["ada@example.org"])]
    response = await client.post(
        "/v2/models/fraud-rules/infer",
        json={"inputs": inputs},
        headers={**auth(owner_token), "x-request-id": "oip-recorded-0001"},
    )
    assert response.status_code == 200, response.text
    await app.state.predictions.recorder.flush()
    page = await client.get("/v1/predictions?model=fraud-rules", headers=auth(owner_token))
    [item] = page.json()["items"]
    assert item["request_id"] == "oip-recorded-0001"
    assert item["inputs"] == {"amount": 5000.0, "country": "GB"}  # the PII field is sealed
    assert item["score"] == response.json()["outputs"][0]["data"][0]


async def test_oip_needs_the_same_permissions_and_tenancy_as_the_native_api(
    client: httpx.AsyncClient, owner_token: str, make_member: MakeMember, owner: Member
) -> None:
    await register_rules_model(client, owner_token)
    viewer = await make_member(role="viewer", org_slug=owner.org_slug)
    viewer_token = (await login(client, viewer))["access_token"]
    KNOWN_SECRETS.add(viewer_token)
    assert (
        await client.get("/v2/models/fraud-rules", headers=auth(viewer_token))
    ).status_code == 200
    denied = await infer(client, viewer_token, {"inputs": rules_inputs([1.0], ["US"])})
    assert denied.status_code == 403
    assert "predict" in denied.json()["error"]
    anonymous = await client.post(
        "/v2/models/fraud-rules/infer", json={"inputs": rules_inputs([1.0], ["US"])}
    )
    assert anonymous.status_code == 401
    stranger = await make_member(role="owner")
    stranger_token = (await login(client, stranger))["access_token"]
    KNOWN_SECRETS.add(stranger_token)
    for response in (
        await client.get("/v2/models/fraud-rules", headers=auth(stranger_token)),
        await client.get("/v2/models/fraud-rules/ready", headers=auth(stranger_token)),
        await infer(client, stranger_token, {"inputs": rules_inputs([1.0], ["US"])}),
    ):
        assert response.status_code == 404


# --- the real Triton client against a live server ----------------------------------------


START_TIMEOUT = 60.0


@dataclass
class LiveServer:
    url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_environment(settings: Settings, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    secrets = {
        name: getattr(settings, name).get_secret_value()
        for name in ("token_signing_key", "session_secret", "encryption_key")
    }
    env.update(
        ASSAY_ENV="test",
        ASSAY_DATA_DIR=str(settings.data_dir),
        ASSAY_DATABASE_URL=settings.effective_database_url,
        ASSAY_HOST="127.0.0.1",
        ASSAY_PORT=str(port),
        ASSAY_METRICS_PORT="0",
        ASSAY_TOKEN_SIGNING_KEY=secrets["token_signing_key"],
        ASSAY_SESSION_SECRET=secrets["session_secret"],
        ASSAY_ENCRYPTION_KEY=secrets["encryption_key"],
        PYTHONUNBUFFERED="1",
    )
    return env


def _spawn_server(env: dict[str, str], cwd: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-c", "from assay.cli import app; app()", "serve"],
            env=env,
            cwd=cwd,  # no stray .env file is picked up
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
async def live_server(
    client: httpx.AsyncClient, owner_token: str, settings: Settings, tmp_path: Path
) -> AsyncIterator[LiveServer]:
    """`assay serve` in its own process, on the test's database, with a rules model and a
    predict-scoped API key made through the API."""
    await register_rules_model(client, owner_token)
    created = await client.post(
        "/v1/org/api-keys",
        json={"name": "triton", "scopes": ["models:read", "predict"]},
        headers=auth(owner_token),
    )
    assert created.status_code == 201, created.text
    api_key = created.json()["key"]
    KNOWN_SECRETS.add(api_key)
    port = _free_port()
    log_path = tmp_path / "live-server.log"
    process = _spawn_server(_server_environment(settings, port), tmp_path, log_path)
    server = LiveServer(f"127.0.0.1:{port}", api_key, process, log_path)
    try:
        await _wait_until_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _wait_until_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(base_url=f"http://{server.url}", timeout=2) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"the server exited with {server.process.returncode}:\n{server.log()}")
            try:
                if (await http.get("/v2/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"the server was not ready within {START_TIMEOUT}s:\n{server.log()}")


def _use_triton_client(url: str, api_key: str) -> dict[str, Any]:
    """Everything an existing tritonclient user does, unchanged: its defaults send inputs
    and ask for outputs as binary tensor data."""
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    def headers() -> dict[str, str]:
        # A fresh dict per call: tritonclient writes Inference-Header-Content-Length into
        # the dict it is given, which would follow a reused one into the next request.
        return {"x-api-key": api_key}

    client = httpclient.InferenceServerClient(url=url, connection_timeout=10, network_timeout=30)
    try:
        seen: dict[str, Any] = {
            "live": client.is_server_live(),
            "ready": client.is_server_ready(),
            "model_ready": client.is_model_ready("fraud-rules", headers=headers()),
            "server": client.get_server_metadata(headers=headers()),
            "metadata": client.get_model_metadata("fraud-rules", "1", headers=headers()),
        }
        amount = httpclient.InferInput("amount", [3], "FP64")
        amount.set_data_from_numpy(np.array([5000.0, 10.0, 1500.0]))
        country = httpclient.InferInput("country", [3], "BYTES")
        country.set_data_from_numpy(np.array([b"GB", b"US", b"DE"], dtype=object))
        outputs = [
            httpclient.InferRequestedOutput("score"),
            httpclient.InferRequestedOutput("label"),
        ]
        result = client.infer(
            "fraud-rules",
            [amount, country],
            outputs=outputs,
            request_id="triton-1",
            headers=headers(),
        )
        seen["scores"] = result.as_numpy("score").tolist()
        seen["labels"] = [v.decode() for v in result.as_numpy("label").tolist()]
        seen["response"] = result.get_response()
        # Without `outputs` the client asks for every output as binary data.
        every = client.infer("fraud-rules", [amount, country], headers=headers())
        seen["default_outputs"] = every.as_numpy("score").tolist()
        seen["default_risk"] = every.as_numpy("risk").tolist()
        # And the JSON forms still work for clients that choose them.
        json_amount = httpclient.InferInput("amount", [3], "FP64")
        json_amount.set_data_from_numpy(np.array([5000.0, 10.0, 1500.0]), binary_data=False)
        json_country = httpclient.InferInput("country", [3], "BYTES")
        json_country.set_data_from_numpy(
            np.array([b"GB", b"US", b"DE"], dtype=object), binary_data=False
        )
        as_json = client.infer(
            "fraud-rules",
            [json_amount, json_country],
            outputs=[httpclient.InferRequestedOutput("score", binary_data=False)],
            headers=headers(),
        )
        seen["json_scores"] = as_json.as_numpy("score").tolist()
        bad = httpclient.InferInput("amount", [3], "FP64")
        bad.set_data_from_numpy(np.array([-1.0, 10.0, 1500.0]))
        try:
            client.infer("fraud-rules", [bad, country], headers=headers())
        except InferenceServerException as exc:
            seen["invalid"] = (exc.status(), exc.message())
        try:
            client.get_model_metadata("fraud-rules")  # no credentials
        except InferenceServerException as exc:
            seen["anonymous"] = (exc.status(), exc.message())
    finally:
        client.close()
    return seen


async def test_the_triton_http_client_works_against_a_live_server(
    live_server: LiveServer, client: httpx.AsyncClient, owner_token: str
) -> None:
    seen = await asyncio.to_thread(_use_triton_client, live_server.url, live_server.api_key)
    assert seen["live"]
    assert seen["ready"]
    assert seen["model_ready"]
    assert seen["server"]["name"] == "assay"
    assert seen["metadata"]["platform"] == "assay-rules"
    assert [i["name"] for i in seen["metadata"]["inputs"]] == ["amount", "country", "email"]
    native = await client.post(
        "/v1/models/fraud-rules/predict",
        json={
            "records": [
                {"amount": 5000, "country": "GB"},
                {"amount": 10, "country": "US"},
                {"amount": 1500, "country": "DE"},
            ]
        },
        headers=auth(owner_token),
    )
    expected = native.json()["results"]
    assert seen["scores"] == [r["score"] for r in expected]
    assert seen["labels"] == [r["label"] for r in expected]
    assert seen["default_outputs"] == seen["scores"]
    assert seen["default_risk"] == [b"", b"", b""]  # the model declares no risk bands
    assert seen["json_scores"] == seen["scores"]
    assert seen["response"]["id"] == "triton-1"
    assert seen["response"]["model_version"] == "1"
    status, message = seen["invalid"]
    assert status == "422"
    assert "records.0.amount" in message
    assert seen["anonymous"][0] == "401"
