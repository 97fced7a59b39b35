"""The prediction cache: tenant-safe keys, alias moves, hits recorded and rate limited,
per-model opt-out, and a failing backend that degrades to computing.

On SQLite and PostgreSQL; the tenant and alias tests also on Redis. Requests go
through the fast path, and once through the framework's route (`explain=True` is a
spelling only the framework parses), which must share the cache.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from assay.app import create_app
from assay.core.cache import InProcessCache
from assay.engine.pack import load_pack
from assay.engine.results import ValidatedRecord
from assay.predictions.result_cache import prediction_cache_key
from assay.registry.packs import manifest_of
from assay.settings import Settings
from tests.conftest import REDIS_URL, make_migrated_database_url, require_service
from tests.support.identity import PrivateRedis, login, new_member
from tests.support.models import RULES_MANIFEST, auth, register_rules_model

PASSING = {"amount": 5000, "country": "GB", "email": "someone@example.org"}
PREDICT = "/v1/models/fraud-rules/predict"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The cache touches no SQL beyond one new column: SQLite and PostgreSQL suffice."""
    url, drop = await make_migrated_database_url(request.param, tmp_path)
    yield url
    if drop is not None:
        await drop()


@pytest.fixture(params=["memory", "redis"])
def cache_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_service("redis")
    return str(request.param)


Serve = Callable[..., Any]


@pytest.fixture
def serve(settings_factory: Callable[..., Settings], database_url: str) -> Serve:
    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        application = create_app(settings_factory(database_url=database_url, **overrides))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield application, http

    return run


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("assay_prediction_cache_total", {"outcome": outcome}) or 0.0


async def _owner_token(app: FastAPI, client: httpx.AsyncClient) -> str:
    owner = await new_member(app, role="owner")
    return str((await login(client, owner))["access_token"])


async def _predict(
    client: httpx.AsyncClient, token: str, record: dict[str, Any], query: str = ""
) -> httpx.Response:
    answered = await client.post(f"{PREDICT}{query}", json={"record": record}, headers=auth(token))
    assert answered.status_code == 200, answered.text
    return answered


def _manifest(**changes: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(RULES_MANIFEST)
    manifest.update(changes)
    return manifest


async def test_each_organisation_computes_its_own_answer(serve: Serve, cache_backend: str) -> None:
    options = {"redis_url": REDIS_URL} if cache_backend == "redis" else {}
    async with serve(**options) as (app, client):
        first, second = await _owner_token(app, client), await _owner_token(app, client)
        # The same manifest: both versions have the same content digest.
        digests = set()
        for token in (first, second):
            registered = await register_rules_model(client, token)
            digests.add(registered.json()["content_digest"])
        assert len(digests) == 1

        misses, hits = counted("miss"), counted("hit")
        assert (await _predict(client, first, PASSING)).headers["assay-cache"] == "miss"
        # Through the framework's route: the same key, so the same entry.
        again = await _predict(client, first, PASSING, "?explain=True")
        assert again.headers["assay-cache"] == "hit"
        assert (await _predict(client, second, PASSING)).headers["assay-cache"] == "miss"
        repeated = await _predict(client, second, PASSING)
        assert repeated.headers["assay-cache"] == "hit"
        assert repeated.json()["results"] == again.json()["results"]
        assert (counted("miss"), counted("hit")) == (misses + 2, hits + 2)
        # Options that change the answer are part of the key.
        plain = await _predict(client, first, PASSING, "?explain=false")
        assert plain.headers["assay-cache"] == "miss"
        assert plain.json()["results"][0]["explanation"] is None


async def test_an_alias_move_misses_and_answers_with_the_new_version(
    serve: Serve, cache_backend: str
) -> None:
    options = {"redis_url": REDIS_URL} if cache_backend == "redis" else {}
    async with serve(**options) as (app, client):
        token = await _owner_token(app, client)
        await register_rules_model(client, token)
        await _predict(client, token, PASSING)
        cached = await _predict(client, token, PASSING, "?alias=production")
        assert cached.headers["assay-cache"] == "hit"
        assert cached.json()["results"][0]["label"] == "PASS"

        renamed = _manifest()
        renamed["spec"]["bands"]["verdict"][0]["label"] = "APPROVED"
        version = await client.post(
            "/v1/models/fraud-rules/versions",
            data={"manifest": json.dumps(renamed)},
            headers=auth(token),
        )
        assert version.status_code == 201, version.text
        moved = await client.put(
            "/v1/models/fraud-rules/aliases/production",
            json={"version": 2},
            headers=auth(token),
        )
        assert moved.status_code == 200, moved.text

        answered = await _predict(client, token, PASSING, "?alias=production")
        assert answered.headers["assay-cache"] == "miss"
        assert answered.json()["model"]["version"] == 2
        assert answered.json()["results"][0]["label"] == "APPROVED"


@pytest.mark.usefixtures("steady_rate_window")
async def test_a_hit_is_recorded_and_rate_limited_like_a_miss(serve: Serve) -> None:
    async with serve(rate_limit_scoring_per_key="3/minute") as (app, client):
        token = await _owner_token(app, client)
        await register_rules_model(client, token)
        outcomes = [(await _predict(client, token, PASSING)).headers["assay-cache"]]
        outcomes += [(await _predict(client, token, PASSING)).headers["assay-cache"]]
        outcomes += [(await _predict(client, token, PASSING)).headers["assay-cache"]]
        assert outcomes == ["miss", "hit", "hit"]
        limited = await client.post(PREDICT, json={"record": PASSING}, headers=auth(token))
        assert limited.status_code == 429

        await app.state.predictions.recorder.flush()
        page = await client.get("/v1/predictions", headers=auth(token))
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        assert sorted(item["cache_hit"] for item in items) == [False, True, True]
        # A hit is recorded as a miss is: the same answer, inputs without the PII field.
        assert {(item["label"], item["score"]) for item in items} == {
            (items[0]["label"], items[0]["score"])
        }
        assert all("email" not in item["inputs"] for item in items)


@pytest.mark.parametrize(
    ("policy", "header"),
    [("off", "off"), (False, "off"), ({"ttl_seconds": 60}, "hit")],
    ids=["off-string", "off-yaml-false", "own-ttl"],
)
async def test_a_model_can_opt_out_or_set_its_own_ttl(
    serve: Serve, policy: object, header: str
) -> None:
    async with serve() as (app, client):
        token = await _owner_token(app, client)
        registered = await register_rules_model(client, token, manifest=_manifest(cache=policy))
        assert registered.status_code == 201, registered.text
        before = counted(header)
        await _predict(client, token, PASSING)
        second = await _predict(client, token, PASSING)
        assert second.headers["assay-cache"] == header
        assert counted(header) >= before + 1


async def test_an_invalid_cache_policy_is_refused(serve: Serve) -> None:
    async with serve() as (app, client):
        token = await _owner_token(app, client)
        refused = await register_rules_model(
            client, token, manifest=_manifest(cache={"ttl_seconds": 0})
        )
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "manifest.cache"


async def test_the_setting_turns_the_cache_off(serve: Serve) -> None:
    async with serve(prediction_cache_enabled=False) as (app, client):
        token = await _owner_token(app, client)
        await register_rules_model(client, token)
        offs = counted("off")
        for _ in range(2):
            assert (await _predict(client, token, PASSING)).headers["assay-cache"] == "off"
        assert counted("off") == offs + 2
        batch = await client.post(
            PREDICT, json={"records": [PASSING, PASSING]}, headers=auth(token)
        )
        assert "assay-cache" not in batch.headers


class _FailingCache(InProcessCache):
    """A backend whose every call fails as a stopped Redis does."""

    async def get(self, key: str) -> bytes | None:
        raise RedisConnectionError("connection refused")

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        raise RedisConnectionError("connection refused")


async def test_a_failing_cache_backend_degrades_to_computing(serve: Serve) -> None:
    async with serve() as (app, client):
        token = await _owner_token(app, client)
        await register_rules_model(client, token)
        expected = (await _predict(client, token, PASSING)).json()["results"]
        app.state.predictions.result_cache.backend = _FailingCache(10)
        errors = counted("error")
        answered = await _predict(client, token, {**PASSING, "amount": 4000})
        assert answered.headers["assay-cache"] == "error"
        # The next request skips the failing backend for a moment, still computing.
        again = await _predict(client, token, PASSING)
        assert again.headers["assay-cache"] == "error"
        assert again.json()["results"] == expected
        assert counted("error") == errors + 2


def test_the_key_holds_digests_not_inputs() -> None:
    org = uuid.uuid4()
    record = ValidatedRecord(0, {"email": "someone@example.org", "amount": 5}, ())
    key = prediction_cache_key(org, "d" * 64, record, explain=True)
    assert "someone" not in key
    assert str(org) in key
    assert "d" * 64 in key
    assert key != prediction_cache_key(uuid.uuid4(), "d" * 64, record, explain=True)
    assert key != prediction_cache_key(org, "d" * 64, record, explain=False)


def test_a_pack_entry_carries_its_cache_policy(tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(
        "fields:\n  - {name: amount, type: number, minimum: 0}\n", encoding="utf-8"
    )
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - {id: big, when: {field: amount, op: '>=', value: 10}, points: 1}\n",
        encoding="utf-8",
    )
    (tmp_path / "manifest.yaml").write_text(
        "format: assay-pack/v1\nname: cached\nschema: schema.yaml\nmodels:\n"
        "  - {name: always, kind: rules, rules: rules.yaml, cache: off}\n"
        "  - {name: minute, kind: rules, rules: rules.yaml, cache: {ttl_seconds: 60}}\n"
        "  - {name: default, kind: rules, rules: rules.yaml}\n",
        encoding="utf-8",
    )
    policies = {model.name: manifest_of(model).get("cache") for model in load_pack(tmp_path).models}
    assert policies == {"always": "off", "minute": {"ttl_seconds": 60.0}, "default": None}


def _tensors(amounts: list[float], countries: list[str]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "amount", "datatype": "FP64", "shape": [len(amounts)], "data": amounts},
            {"name": "country", "datatype": "BYTES", "shape": [len(countries)], "data": countries},
        ]
    }


async def test_open_inference_protocol_rows_share_the_cache(serve: Serve) -> None:
    async with serve() as (app, client):
        token = await _owner_token(app, client)
        await register_rules_model(client, token)
        url = "/v2/models/fraud-rules/infer"
        seen = []
        for body in (_tensors([5000], ["GB"]), _tensors([5000], ["GB"])):
            answered = await client.post(url, json=body, headers=auth(token))
            assert answered.status_code == 200, answered.text
            seen.append(answered.headers["assay-cache"])
        assert seen == ["miss", "hit"]
        several = await client.post(
            url, json=_tensors([5000, 10], ["GB", "US"]), headers=auth(token)
        )
        assert several.status_code == 200, several.text
        assert "assay-cache" not in several.headers


async def test_an_unreadable_entry_is_computed_and_replaced(serve: Serve) -> None:
    async with serve() as (app, client):
        token = await _owner_token(app, client)
        await register_rules_model(client, token)
        expected = (await _predict(client, token, PASSING)).json()["results"]
        backend = app.state.predictions.result_cache.backend
        for key in list(backend._entries):
            await backend.set(key, b"not sealed by this key ring")
        damaged = await _predict(client, token, PASSING)
        assert damaged.headers["assay-cache"] == "error"
        assert damaged.json()["results"] == expected
        # Replaced: the next call is a hit again, with no pause after a bad entry.
        assert (await _predict(client, token, PASSING)).headers["assay-cache"] == "hit"


async def test_a_stopped_redis_still_answers_and_counts_an_error(
    serve: Serve, private_redis: PrivateRedis
) -> None:
    # With Redis gone, the rate limiter's fail-open classes let requests through and the
    # database checks the token; the prediction cache must not fail the answer either.
    fail_open = ["default", "management", "scoring"]
    async with serve(redis_url=private_redis.url, rate_limit_fail_open_classes=fail_open) as (
        app,
        client,
    ):
        token = await _owner_token(app, client)
        await register_rules_model(client, token)
        await _predict(client, token, PASSING)
        assert (await _predict(client, token, PASSING)).headers["assay-cache"] == "hit"
        private_redis.stop()
        errors = counted("error")
        answered = await _predict(client, token, PASSING)
        assert answered.headers["assay-cache"] == "error"
        assert answered.json()["results"][0]["label"] == "PASS"
        assert counted("error") == errors + 1
