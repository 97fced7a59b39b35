"""The OpenAPI document says how to authenticate, and its operation ids are readable."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from assay.auth.public_routes import is_public

METHODS = {"get", "put", "post", "delete", "patch"}


async def test_every_operation_declares_its_credentials(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert (schemes["bearer"]["type"], schemes["bearer"]["scheme"]) == ("http", "bearer")
    api_key = schemes["apiKey"]
    assert (api_key["type"], api_key["in"], api_key["name"]) == ("apiKey", "header", "X-API-Key")
    assert schemes["consoleSession"]["in"] == "cookie"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            if is_public(method.upper(), path):
                assert operation["security"] == [], (method, path)
            else:
                required = {name for choice in operation["security"] for name in choice}
                assert required == {"bearer", "apiKey", "consoleSession"}, (method, path)


async def test_operation_ids_are_the_route_names_and_unique(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    document = (await client.get("/openapi.json")).json()
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    assert {"create_model", "predict", "login", "list_api_keys"} <= set(ids)
