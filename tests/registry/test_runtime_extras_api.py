"""Through the API: a model whose runtime is an extra this server lacks is refused at
registration (422), or, registered before the extra went away, unhealthy with the reason
(503); both name the extra. Never a 500.

"Not installed" is simulated in this process: a module set to None in `sys.modules`
cannot be imported.
"""

from __future__ import annotations

import sys

import httpx
import pytest
from fastapi import FastAPI

from tests.registry.test_model_lifecycle import (
    create,
    ml_manifest,
    point,
    predict,
    status_of,
    upload,
    version_count,
)
from tests.support.engine import artifacts, tiny_data, tiny_logreg

__all__ = ["artifacts", "tiny_data", "tiny_logreg"]
INSTALL_XGBOOST = "pip install 'assay[xgboost]'"


async def test_registering_a_model_whose_runtime_is_not_installed_is_refused_naming_the_extra(
    client: httpx.AsyncClient,
    owner_token: str,
    artifacts: dict[str, bytes],
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)
    await create(client, owner_token, "boosted")
    refused = await upload(
        client,
        owner_token,
        "boosted",
        artifacts["xgboost-json"],
        manifest=ml_manifest("xgboost-json"),
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:assay:problem:runtime-not-installed"
    assert INSTALL_XGBOOST in problem["detail"]
    assert await version_count(app) == 0


async def test_a_version_whose_runtime_went_missing_is_unhealthy_naming_the_extra(
    client: httpx.AsyncClient,
    owner_token: str,
    artifacts: dict[str, bytes],
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await create(client, owner_token, "boosted")
    registered = await upload(
        client,
        owner_token,
        "boosted",
        artifacts["xgboost-json"],
        manifest=ml_manifest("xgboost-json"),
    )
    assert registered.status_code == 201, registered.text
    assert (await point(client, owner_token, "boosted", 1)).status_code == 200
    for entry in app.state.registry.cache.loaded():
        app.state.registry.cache.evict(entry.version_id)

    monkeypatch.setitem(sys.modules, "xgboost", None)  # as after a reinstall without it
    response = await predict(client, owner_token, "boosted")
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:assay:problem:model-unavailable"
    status, reason = (await status_of(client, owner_token, "boosted"))[1]
    assert status == "unhealthy"
    assert INSTALL_XGBOOST in reason
