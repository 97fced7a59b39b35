"""Fixtures for the scoring API: identity fixtures plus a small rules model."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from assay.audit.service import CLI
from assay.core.principal import platform_in
from assay.registry.packs import ImportedModel

RULES_MANIFEST: dict[str, Any] = {
    "schema": {
        "fields": [
            {"name": "amount", "type": "number", "minimum": 0, "maximum": 1_000_000},
            {"name": "country", "type": "string", "enum": ["US", "GB", "DE"]},
            {"name": "email", "type": "string", "required": False, "pii": True, "max_length": 254},
        ]
    },
    "spec": {
        "kind": "rules",
        "rules": {
            "rules": [
                {"id": "big", "when": {"field": "amount", "op": ">=", "value": 1000}, "points": 2},
                {"id": "gb", "when": {"field": "country", "op": "==", "value": "GB"}, "points": 1},
            ]
        },
        "bands": {
            "verdict": [
                {"label": "PASS", "at_least": 0.7},
                {"label": "CONDITIONAL PASS", "at_least": 0.5},
                {"label": "FAIL"},
            ]
        },
    },
}


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def register_rules_model(
    client: httpx.AsyncClient,
    token: str,
    name: str = "fraud-rules",
    manifest: dict[str, Any] | None = None,
) -> httpx.Response:
    created = await client.post(
        "/v1/models", json={"name": name, "kind": "rules"}, headers=auth(token)
    )
    assert created.status_code == 201, created.text
    version = await client.post(
        f"/v1/models/{name}/versions",
        data={"manifest": json.dumps(manifest or RULES_MANIFEST)},
        headers=auth(token),
    )
    if version.status_code == 201:
        moved = await client.put(
            f"/v1/models/{name}/aliases/production",
            json={"version": version.json()["version"]},
            headers=auth(token),
        )
        assert moved.status_code == 200, moved.text
    return version


async def import_pack_into(
    app: FastAPI, org_id: uuid.UUID | None, directory: Path
) -> list[ImportedModel]:
    """`assay models import`, through the running app's registry."""
    assert org_id is not None
    async with app.state.database.sessionmaker() as db:
        imported = await app.state.registry.import_pack(db, CLI, platform_in(org_id), directory)
        await db.commit()
    return imported
