"""Jobs on real brokers (Redis, RabbitMQ) and real `assay worker` processes sharing one
PostgreSQL and one data directory: one job on two workers, a worker killed mid-job, a
broker restarted mid-job. Every row is in the result, and recorded, exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from assay.app import create_app
from assay.core.tenancy import across_tenants
from assay.predictions.models import PredictionRecord
from assay.settings import Settings
from tests.conftest import make_database_url, require_service
from tests.jobs.support import csv_of, result_rows, submit_csv
from tests.jobs.workers import start_worker, workers
from tests.support.identity import PrivateRedis, login, new_member, private_redis_server
from tests.support.models import auth, register_rules_model

BROKERS = {
    "redis": ("redis", "redis://127.0.0.1:6379/15"),
    "rabbitmq": ("rabbitmq", "amqp://guest:guest@127.0.0.1:5672/"),
}
ROW = {"amount": 5000, "country": "GB"}


@pytest.fixture(params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest) -> str:
    service, url = BROKERS[request.param]
    require_service(service)
    return url


@pytest.fixture
async def shared_database(tmp_path: Path) -> AsyncIterator[str]:
    url, drop = await make_database_url("postgresql", tmp_path)
    yield url
    if drop is not None:
        await drop()


@pytest.fixture
def queue_name() -> str:
    return f"assay-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def forget_queue(broker_url: str, queue_name: str) -> AsyncIterator[None]:
    """RabbitMQ keeps a durable queue: delete the test's own once it is done."""
    yield
    if broker_url.startswith("amqp"):
        connection = await aio_pika.connect(broker_url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue_name)


def _job_settings(**extra: Any) -> dict[str, Any]:
    return {
        "jobs_chunk_rows": 100,
        "jobs_checkpoint_rows": 25,
        "jobs_lease_seconds": 2,
        "jobs_retry_base_seconds": 0,
        "prediction_records_sync": True,
        "rate_limit_management": "1000000/minute",
        "rate_limit_scoring_per_key": "1000000/minute",
        **extra,
    }


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings],
    shared_database: str,
    broker_url: str,
    queue_name: str,
    forget_queue: None,
) -> Settings:
    return settings_factory(
        database_url=shared_database,
        jobs_broker=broker_url,
        jobs_queue=queue_name,
        **_job_settings(),
    )


async def _wait(
    client: httpx.AsyncClient, token: str, job_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Bounded polling of the job's state until `done` holds."""
    job: dict[str, Any] = {}
    for _ in range(6000):
        answer = await client.get(f"/v1/jobs/{job_id}", headers=auth(token))
        assert answer.status_code == 200, answer.text
        job = answer.json()
        if done(job):
            return job
        assert job["state"] not in ("failed", "cancelled"), job
        await asyncio.sleep(0.02)
    raise AssertionError(f"the job never got there: {job}")


async def _records_of(app: FastAPI, job_id: str) -> int:
    async with app.state.database.sessionmaker() as db:
        statement = across_tenants(
            select(func.count())
            .select_from(PredictionRecord)
            .where(PredictionRecord.request_id == f"job:{job_id}"),
            "test: the job's records",
        )
        return int((await db.execute(statement)).scalar_one())


async def _assert_exactly_once(
    client: httpx.AsyncClient, token: str, app: FastAPI, job_id: str, rows: int
) -> None:
    result = await result_rows(client, token, job_id)
    assert [r["row"] for r in result] == list(range(rows))
    assert all(r["status"] == "ok" for r in result)
    assert await _records_of(app, job_id) == rows


async def test_one_job_on_two_workers_has_every_row_exactly_once(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    await register_rules_model(client, owner_token)
    with workers(settings, tmp_path) as started:
        first = start_worker(started, settings, tmp_path)
        second = start_worker(started, settings, tmp_path)
        submitted = await submit_csv(client, owner_token, csv_of([ROW] * 3000, list(ROW)))
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        job = await _wait(client, owner_token, job_id, lambda j: j["state"] == "succeeded")
        assert job["progress"] == {"done": 3000, "total": 3000, "row_errors": 0}
        await _assert_exactly_once(client, owner_token, app, job_id, 3000)
        # Both took part: each took chunks of the job.
        for worker in (first, second):
            assert any(e["job_id"] == job_id for e in worker.events("job_chunk_taken"))
        assert [w.stop() for w in started] == [0, 0]


async def test_a_killed_workers_chunk_is_taken_over_and_no_row_is_lost_or_repeated(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    await register_rules_model(client, owner_token)
    rows = 3000
    with workers(settings, tmp_path) as started:
        doomed = start_worker(started, settings, tmp_path, concurrency=1)
        submitted = await submit_csv(client, owner_token, csv_of([ROW] * rows, list(ROW)))
        job_id = submitted.json()["id"]
        await _wait(client, owner_token, job_id, lambda j: j["progress"]["done"] >= 50)
        doomed.kill()
        killed_at = (await client.get(f"/v1/jobs/{job_id}", headers=auth(owner_token))).json()
        assert killed_at["state"] == "running"
        assert killed_at["progress"]["done"] < rows

        successor = start_worker(started, settings, tmp_path, concurrency=1)
        job = await _wait(client, owner_token, job_id, lambda j: j["state"] == "succeeded")
        assert job["progress"]["done"] == rows
        await _assert_exactly_once(client, owner_token, app, job_id, rows)
        # The successor finished the job: it took over what the dead worker left.
        assert any(e["job_id"] == job_id for e in successor.events("job_chunk_taken"))


async def test_a_worker_stopped_with_sigterm_releases_its_chunk_for_another(
    client: httpx.AsyncClient, owner_token: str, app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    await register_rules_model(client, owner_token)
    rows = 2000
    with workers(settings, tmp_path) as started:
        leaving = start_worker(started, settings, tmp_path, concurrency=1)
        submitted = await submit_csv(client, owner_token, csv_of([ROW] * rows, list(ROW)))
        job_id = submitted.json()["id"]
        await _wait(client, owner_token, job_id, lambda j: j["progress"]["done"] >= 50)
        assert leaving.stop() == 0
        assert leaving.events("worker_stopped")

        start_worker(started, settings, tmp_path, concurrency=1)
        await _wait(client, owner_token, job_id, lambda j: j["state"] == "succeeded")
        await _assert_exactly_once(client, owner_token, app, job_id, rows)


@pytest.fixture
def restartable_redis(free_port: int, tmp_path: Path) -> Iterator[list[PrivateRedis]]:
    servers: list[PrivateRedis] = []
    with private_redis_server(free_port, tmp_path) as server:
        servers.append(server)
        yield servers


async def test_a_redis_restart_during_a_job_loses_and_repeats_no_row(
    settings_factory: Callable[..., Settings],
    shared_database: str,
    free_port: int,
    tmp_path: Path,
    restartable_redis: list[PrivateRedis],
) -> None:
    settings = settings_factory(
        database_url=shared_database,
        jobs_broker=restartable_redis[0].url,
        jobs_queue="assay-restart",
        **_job_settings(),
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            token = (await login(client, await new_member(application)))["access_token"]
            await register_rules_model(client, token)
            rows = 3000
            with workers(settings, tmp_path) as started:
                start_worker(started, settings, tmp_path, concurrency=1)
                submitted = await submit_csv(client, token, csv_of([ROW] * rows, list(ROW)))
                job_id = submitted.json()["id"]
                await _wait(client, token, job_id, lambda j: j["progress"]["done"] >= 50)
                restartable_redis[0].stop()
                (tmp_path / "again").mkdir()
                with private_redis_server(free_port, tmp_path / "again"):
                    await _wait(client, token, job_id, lambda j: j["state"] == "succeeded")
                    await _assert_exactly_once(client, token, application, job_id, rows)
