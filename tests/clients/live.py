"""A real Assay under uvicorn on a loopback port, in a thread of its own, for client tests.

The server runs its own event loop, so synchronous clients (which block the test's
thread) and asynchronous ones (on the test's loop) both talk to it over real HTTP.
Anything that must touch the app's database or state runs on the server's loop
through `LiveServer.run`.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from assay.audit.service import CLI
from assay.core.principal import PLATFORM
from assay.orgs import service as orgs
from assay.server import uvicorn_options
from assay.settings import Settings
from tests.conftest import KNOWN_SECRETS
from tests.support.identity import Member, login, new_member
from tests.support.models import auth, register_rules_model

T = TypeVar("T")
# Bounded waits on a condition (the server to start or stop), in steps of JOIN_STEP.
JOIN_STEP = 0.01
START_STEPS = 6000
STOP_SECONDS = 30.0
MODEL = "fraud-rules"
FULL_SCOPES = ["models:read", "predict", "jobs:read", "jobs:write"]


class LiveServer:
    """`create_app(settings)` served by uvicorn in a background thread."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        options = uvicorn_options(settings)
        options.update(timeout_graceful_shutdown=5)
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.base_url = f"http://127.0.0.1:{settings.port}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="assay-live", daemon=True)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def start(self) -> None:
        self._thread.start()
        for _ in range(START_STEPS):
            if self.server.started:
                return
            if not self._thread.is_alive():
                raise RuntimeError("the live server stopped while starting")
            self._thread.join(JOIN_STEP)
        raise RuntimeError("the live server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(STOP_SECONDS)
        if self._thread.is_alive():
            raise RuntimeError("the live server did not stop")

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        """Run `work` on the server's event loop and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def call_soon(self, callback: Callable[[], object]) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(callback)


@dataclass
class Tenant:
    """A signed-in owner of a fresh organisation, with API keys and the rules model."""

    member: Member
    token: str
    api_key: str
    read_only_key: str
    signing_key: str
    signing_secret: str


async def _create_key(
    http: httpx.AsyncClient, token: str, scopes: list[str], *, signing_required: bool = False
) -> dict[str, Any]:
    answer = await http.post(
        "/v1/org/api-keys",
        json={
            "name": f"client-{uuid.uuid4().hex[:6]}",
            "scopes": scopes,
            "signing_required": signing_required,
        },
        headers=auth(token),
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    KNOWN_SECRETS.add(body["key"])
    if body.get("signing_secret"):
        KNOWN_SECRETS.add(body["signing_secret"])
    return body


async def new_tenant(live: LiveServer, *, scoring_quota: str | None = None) -> Tenant:
    """Run on the server's loop: an owner, three keys, the rules model at `production`."""
    member = await new_member(live.app)
    if scoring_quota is not None:
        assert member.org_id is not None
        async with live.app.state.database.sessionmaker() as db:
            await orgs.set_scoring_quota(
                db, live.app.state.quotas, CLI, PLATFORM, member.org_id, scoring_quota
            )
            await db.commit()
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        token = (await login(http, member))["access_token"]
        version = await register_rules_model(http, token, MODEL)
        assert version.status_code == 201, version.text
        full = await _create_key(http, token, FULL_SCOPES)
        read_only = await _create_key(http, token, ["models:read", "jobs:read"])
        signing = await _create_key(http, token, FULL_SCOPES, signing_required=True)
    return Tenant(
        member=member,
        token=token,
        api_key=full["key"],
        read_only_key=read_only["key"],
        signing_key=signing["key"],
        signing_secret=signing["signing_secret"],
    )


class ScoringGate:
    """Holds the server's scoring after `free` calls until `open()`: a job cannot finish
    (or be cancelled past its next checkpoint) before the test says so."""

    def __init__(self, live: LiveServer, free: int) -> None:
        self.live = live
        self.free = free
        self.calls = 0
        self.opened = False
        self.original: Callable[..., Awaitable[Any]] = live.app.state.predictions.score_unrecorded
        self._opened = live.run(self._event())

    @staticmethod
    async def _event() -> asyncio.Event:
        return asyncio.Event()

    async def _gated(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls > self.free:
            await self._opened.wait()
        return await self.original(*args, **kwargs)

    def close(self) -> None:
        self.live.app.state.predictions.score_unrecorded = self._gated

    def open(self) -> None:
        self.opened = True
        self.live.call_soon(self._opened.set)

    def restore(self) -> None:
        self.open()
        self.live.app.state.predictions.score_unrecorded = self.original


def gate(live: LiveServer, free: int = 0) -> Iterator[ScoringGate]:
    """A closed `ScoringGate`, opened and removed afterwards."""
    held = ScoringGate(live, free)
    held.close()
    try:
        yield held
    finally:
        held.restore()
