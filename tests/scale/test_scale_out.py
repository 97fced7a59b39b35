"""Scale-out, proven with real processes: two `assay serve` on one PostgreSQL and one
Redis, behind a round-robin proxy, behave as one Assay — and survive a rolling restart
under load without failing a request or losing a prediction record."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select

from assay.app import create_app
from assay.core.tenancy import across_tenants
from assay.predictions.models import PredictionRecord
from assay.settings import Settings
from tests.conftest import KNOWN_SECRETS, REDIS_URL, make_database_url, require_service
from tests.support.identity import Member, bearer, login, new_member
from tests.support.models import RULES_MANIFEST
from tests.support.processes import ServerProcess, free_port, spawn, wait_until_ready
from tests.support.round_robin import RoundRobinProxy

pytestmark = pytest.mark.slow

ASSAY = str(Path(sys.executable).parent / "assay")
LOAD_CLIENTS = 4
# Predictions one API key may make per hour in the first test, across both processes.
BUDGET = 40
GOOD = {"amount": 1500.0, "country": "GB"}


@dataclass
class Cluster:
    settings: Settings
    env: dict[str, str]
    servers: list[ServerProcess]
    app: FastAPI  # in this process, on the same database, to create people
    tmp_path: Path

    async def start(self, port: int | None = None) -> ServerProcess:
        port = port or free_port()
        log_path = self.tmp_path / f"serve-{port}.log"
        env = {**self.env, "ASSAY_PORT": str(port)}
        process = spawn([ASSAY, "serve"], env, cwd=self.tmp_path, log_path=log_path)
        server = ServerProcess(process, port, 0, f"scale-{port}", log_path)
        self.servers.append(server)
        await wait_until_ready(server)
        return server

    def start_worker(self) -> ServerProcess:
        log_path = self.tmp_path / f"worker-{len(self.servers)}.log"
        process = spawn(
            [ASSAY, "worker", "--concurrency", "2"], self.env, cwd=self.tmp_path, log_path=log_path
        )
        worker = ServerProcess(process, 0, 0, "scale-worker", log_path)
        self.servers.append(worker)
        return worker


@asynccontextmanager
async def _cluster(tmp_path: Path, settings: Settings, **extra_env: str) -> AsyncIterator[Cluster]:
    require_service("postgresql")
    require_service("redis")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(
        ASSAY_ENV="test",
        ASSAY_DATA_DIR=str(tmp_path / "data"),
        ASSAY_DATABASE_URL=settings.effective_database_url,
        ASSAY_REDIS_URL=REDIS_URL,
        # One address for all of them, as behind a load balancer: tokens name it.
        ASSAY_PUBLIC_URL=str(settings.public_url),
        ASSAY_RATE_LIMIT_NAMESPACE=settings.rate_limit_namespace,
        ASSAY_TOKEN_SIGNING_KEY=_secret(settings, "token_signing_key"),
        ASSAY_SESSION_SECRET=_secret(settings, "session_secret"),
        ASSAY_ENCRYPTION_KEY=_secret(settings, "encryption_key"),
        ASSAY_ARGON2_MEMORY_KIB="1024",
        ASSAY_ARGON2_TIME_COST="1",
        ASSAY_MODEL_RESOLUTION_CACHE_SECONDS="1",
        ASSAY_SHUTDOWN_GRACE_SECONDS="20",
        ASSAY_LOG_FORMAT="json",
        # Jobs go to `assay worker` processes through Redis, on a queue of this test's own.
        ASSAY_JOBS_BROKER=REDIS_URL,
        ASSAY_JOBS_QUEUE=f"{settings.rate_limit_namespace}-jobs",
        PYTHONUNBUFFERED="1",
        **extra_env,
    )
    app = create_app(settings)
    cluster = Cluster(settings, env, [], app, tmp_path)
    # The in-process app migrates the database once, before the servers start.
    async with app.router.lifespan_context(app):
        try:
            yield cluster
        finally:
            for server in cluster.servers:
                server.kill()
    redis: Redis = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{settings.rate_limit_namespace}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def _secret(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    assert value is not None
    return str(value.get_secret_value())


@pytest.fixture
async def postgres_settings(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[Settings]:
    require_service("postgresql")
    url, drop = await make_database_url("postgresql", tmp_path)
    yield settings_factory(
        database_url=url,
        redis_url=REDIS_URL,
        rate_limit_namespace=f"t{uuid.uuid4().hex[:12]}",
        model_resolution_cache_seconds=1,
        public_url="http://assay.test",
    )
    assert drop is not None
    await drop()


async def _api_key(http: httpx.AsyncClient, token: str, name: str) -> tuple[str, str]:
    created = await http.post(
        "/v1/org/api-keys",
        json={"name": name, "scopes": ["predict", "models:read"]},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    KNOWN_SECRETS.add(created.json()["key"])
    return created.json()["key"], created.json()["id"]


async def _register(http: httpx.AsyncClient, token: str, manifest: dict[str, Any]) -> int:
    version = await http.post(
        "/v1/models/fraud-rules/versions",
        data={"manifest": json.dumps(manifest)},
        headers=bearer(token),
    )
    assert version.status_code == 201, version.text
    number: int = version.json()["version"]
    moved = await http.put(
        "/v1/models/fraud-rules/aliases/production", json={"version": number}, headers=bearer(token)
    )
    assert moved.status_code == 200, moved.text
    return number


async def _predict(http: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    return await http.post(
        "/v1/models/fraud-rules/predict",
        json={"record": GOOD},
        headers={"x-api-key": key, **headers},
    )


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.25)


def _away_from_the_top_of_the_hour(margin: float = 120.0) -> None:
    """A sliding-window limit weighs the previous hour less as the new one begins, so a
    budget spent across the boundary could admit one more request: start well inside."""
    into_hour = time.time() % 3600
    if into_hour > 3600 - margin:
        time.sleep(3600 - into_hour + 1)


async def _setup_model(http: httpx.AsyncClient, owner: Member) -> str:
    token = (await login(http, owner))["access_token"]
    created = await http.post(
        "/v1/models", json={"name": "fraud-rules", "kind": "rules"}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    await _register(http, token, RULES_MANIFEST)
    return token


async def test_two_processes_act_as_one(tmp_path: Path, postgres_settings: Settings) -> None:
    async with _cluster(
        tmp_path, postgres_settings, ASSAY_RATE_LIMIT_SCORING_PER_KEY=f"{BUDGET}/hour"
    ) as cluster:
        one, two = await cluster.start(), await cluster.start()
        owner = await new_member(cluster.app, role="owner")
        async with (
            httpx.AsyncClient(base_url=one.base_url, timeout=30) as a,
            httpx.AsyncClient(base_url=two.base_url, timeout=30) as b,
        ):
            # A token one process issued works on the other.
            token = await _setup_model(a, owner)
            assert (await b.get("/v1/me", headers=bearer(token))).status_code == 200

            # An alias moved on one process reaches the other.
            key, key_row = await _api_key(b, token, "scorer")
            first = await _predict(b, key)
            assert first.json()["model"]["version"] == 1
            changed = copy.deepcopy(RULES_MANIFEST)
            changed["spec"]["rules"]["rules"][0]["points"] = 5
            assert await _register(a, token, changed) == 2

            async def moved_on_b() -> bool:
                return (await _predict(b, key)).json()["model"]["version"] == 2

            await _until(moved_on_b, "the alias move reached the second process")

            # Rate limits are shared: the key's budget is spent across both processes.
            limited, _ = await _api_key(a, token, "limited")
            _away_from_the_top_of_the_hour()
            answers = [(await _predict((a, b)[n % 2], limited)).status_code for n in range(BUDGET)]
            assert answers == [200] * BUDGET
            assert (await _predict(a, limited)).status_code == 429
            assert (await _predict(b, limited)).status_code == 429

            # A job submitted through one process runs on the worker, and its progress
            # is followed through the other, to the end.
            worker = cluster.start_worker()
            rows = "amount,country\n" + "".join(f"{n},GB\n" for n in range(1, 41))
            submitted = await a.post(
                "/v1/jobs",
                files={"file": ("rows.csv", rows.encode(), "text/csv")},
                data={"model": "fraud-rules"},
                headers=bearer(token),
            )
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["id"]
            async with b.stream(
                "GET", f"/v1/jobs/{job_id}/events", headers=bearer(token), timeout=60
            ) as stream:
                assert stream.status_code == 200
                seen = [line async for line in stream.aiter_lines() if line.startswith("event:")]
            assert seen[-1] == "event: done", seen
            job = (await b.get(f"/v1/jobs/{job_id}", headers=bearer(token))).json()
            assert (job["state"], job["progress"]["done"]) == ("succeeded", 40)
            assert '"worker_ready"' in worker.log()
            assert f'"job_id": "{job_id}"' in worker.log(), "the job did not run on the worker"

            # Revocations made on one process are refused on the other at once.
            revoked = await a.delete(f"/v1/org/api-keys/{key_row}", headers=bearer(token))
            assert revoked.status_code == 204, revoked.text
            assert (await _predict(b, key)).status_code == 401
            out = await b.post("/v1/auth/logout", headers=bearer(token))
            assert out.status_code == 204
            assert (await a.get("/v1/me", headers=bearer(token))).status_code == 401


async def test_a_rolling_restart_under_load_fails_no_request_and_loses_no_record(
    tmp_path: Path, postgres_settings: Settings
) -> None:
    async with _cluster(
        tmp_path, postgres_settings, ASSAY_RATE_LIMIT_SCORING_PER_KEY="1000000/minute"
    ) as cluster:
        servers = [await cluster.start(), await cluster.start()]
        owner = await new_member(cluster.app, role="owner")
        proxy = RoundRobinProxy([s.base_url for s in servers])
        transport = httpx.ASGITransport(app=proxy)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://proxy", timeout=60
        ) as http:
            token = await _setup_model(http, owner)
            key, _ = await _api_key(http, token, "load")
            statuses: list[int] = []
            answered: list[str] = []
            stop = asyncio.Event()

            async def load(client_number: int) -> None:
                sent = 0
                while not stop.is_set():
                    request_id = f"roll-{client_number}-{sent:06d}"
                    sent += 1
                    response = await _predict(http, key, **{"x-request-id": request_id})
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        answered.append(request_id)

            clients = [asyncio.create_task(load(n)) for n in range(LOAD_CLIENTS)]

            async def load_goes_on() -> None:
                seen = len(answered)

                async def more() -> bool:
                    return len(answered) >= seen + 20

                await _until(more, "requests answered through the proxy")

            for index, server in enumerate(list(servers)):
                await load_goes_on()
                # As a load balancer does when a pod stops being ready: no new requests
                # go to it, and it is signalled once those it was sent are answered
                # (connection draining; Kubernetes' preStop pause). A request whose bytes
                # reached the socket but not yet the server can be cut at SIGTERM, which
                # is why load balancers drain first; in-flight requests finishing under
                # SIGTERM are proven in tests/test_server_lifecycle.py.
                proxy.drain(server.base_url)

                async def drained(url: str = server.base_url) -> bool:
                    return proxy.in_flight(url) == 0

                await _until(drained, "the drained process finished its requests")
                server.sigterm()
                assert await server.wait_exit() == 0, server.log()
                await load_goes_on()  # the other process carries the load alone
                servers[index] = await cluster.start(port=server.port)
                proxy.restore(server.base_url)
            await load_goes_on()
            stop.set()
            await asyncio.gather(*clients)
        await proxy.close()

        # Every process stops gracefully, writing the records it still holds.
        for server in servers:
            server.sigterm()
            assert await server.wait_exit() == 0, server.log()

        async with cluster.app.state.database.sessionmaker() as db:
            stored = list(
                (
                    await db.execute(
                        across_tenants(
                            select(PredictionRecord.request_id), "test: every record of the run"
                        )
                    )
                ).scalars()
            )

    assert statuses, "no load was sent"
    assert set(statuses) == {200}, f"failed requests: {[s for s in statuses if s != 200]}"
    assert len(proxy.sent) == 2
    assert all(count > 0 for count in proxy.sent.values())
    # Every answered prediction was recorded, exactly once.
    assert sorted(stored) == sorted(answered), (
        f"{len(set(answered) - set(stored))} records lost, "
        f"{len(stored) - len(set(stored))} duplicated"
    )
