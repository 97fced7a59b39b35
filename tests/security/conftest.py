"""Security tests reuse the identity fixtures (users, organisations, sign-in); the
HTTP protection tests add probe routes and clients.

Identity sets `principal_id`, `org_id` and `api_key_id` in the request state when it
authenticates; the probe routes do the same from test headers, so rate-limit keys and
`Cache-Control` can be tested against that contract without real credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from assay.accounts import service as accounts
from assay.app import create_app
from assay.audit.service import CLI
from assay.core.principal import PLATFORM
from assay.http.body_limit import AcceptsUpload
from assay.http.rate_limit import (
    RateLimitAuth,
    RateLimitManagement,
    RateLimitScoring,
    limit_auth_account,
)
from assay.orgs import service as orgs
from assay.settings import Settings
from tests.support.identity import strong_password

from ..conftest import KNOWN_SECRETS


class Probe(BaseModel):
    name: str = Field(max_length=50)
    count: int = Field(ge=0, le=1000)


class Attempt(BaseModel):
    account: str


async def act_as(request: Request) -> None:
    """Stands in for identity: sets the principal from x-test-* headers."""
    state = request.scope["state"]
    for header, key in (
        ("x-test-principal", "principal_id"),
        ("x-test-org", "org_id"),
        ("x-test-key", "api_key_id"),
    ):
        if header in request.headers:
            state[key] = request.headers[header]


ActAs = Annotated[None, Depends(act_as)]
probe_router = APIRouter(prefix="/probe")


@probe_router.get("/ok")
async def ok() -> dict[str, str]:
    return {"status": "ok"}


@probe_router.post("/json")
async def accept_json(body: Probe) -> dict[str, int]:
    return {"count": body.count}


@probe_router.get("/crash")
async def crash() -> None:
    raise RuntimeError("internal detail that must not leak")


@probe_router.get("/whoami")
async def whoami(_principal: ActAs) -> dict[str, str]:
    return {"status": "ok"}


@probe_router.get("/score")
async def score(_principal: ActAs, _limit: RateLimitScoring) -> dict[str, str]:
    return {"status": "scored"}


@probe_router.get("/manage")
async def manage(_principal: ActAs, _limit: RateLimitManagement) -> dict[str, str]:
    return {"status": "managed"}


@probe_router.post("/login")
async def login(body: Attempt, request: Request, _limit: RateLimitAuth) -> dict[str, str]:
    await limit_auth_account(request, body.account)
    return {"status": "checked"}


@probe_router.post("/upload")
async def upload(request: Request, _upload: AcceptsUpload) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"received": size}


@probe_router.post("/raw")
async def raw(request: Request) -> dict[str, int]:
    return {"received": len(await request.body())}


@probe_router.get("/html", response_class=HTMLResponse)
async def html_page() -> str:
    return "<!doctype html><title>console</title>"


@probe_router.get("/text", response_class=PlainTextResponse)
async def text() -> str:
    return "plain"


@probe_router.get("/csv")
async def csv_file() -> Response:
    return Response("a,b\r\n1,2\r\n", media_type="text/csv")


@probe_router.get("/cached")
async def cached(_principal: ActAs) -> Response:
    return Response(b"{}", media_type="application/json", headers={"Cache-Control": "max-age=60"})


class ProbeClient(httpx.AsyncClient):
    """A client of an app with the probe routes; `app` is that app (started)."""

    app: FastAPI


ClientFactory = Callable[..., AbstractAsyncContextManager[ProbeClient]]


def build_probe_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.include_router(probe_router)
    return app


@pytest.fixture
def make_client(settings_factory: Callable[..., Settings]) -> ClientFactory:
    """`async with make_client(**settings) as http:` an app with the probe routes."""

    @asynccontextmanager
    async def build(
        base_url: str = "http://testserver",
        client: tuple[str, int] = ("127.0.0.1", 50000),
        **overrides: Any,
    ) -> AsyncIterator[ProbeClient]:
        app = build_probe_app(settings_factory(**overrides))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client)
            async with ProbeClient(transport=transport, base_url=base_url) as http:
                http.app = app
                yield http

    return build


async def add_user(app: FastAPI, *, role: str = "owner") -> tuple[str, str]:
    """A user with `role` in an organisation of their own; returns (email, password)."""
    email = f"user-{uuid.uuid4().hex[:10]}@example.org"
    password = strong_password()
    identity = app.state.identity
    async with app.state.database.sessionmaker() as db:
        user = await accounts.create_user(db, identity, email=email, password=password)
        org = await orgs.create_organisation(
            db, CLI, PLATFORM, name=f"Org {uuid.uuid4().hex[:8]}", slug=None
        )
        await orgs.add_member(db, CLI, PLATFORM, org.id, user, role)
        await db.commit()
    return email, password


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> str:
    """An access token for the user (registered as a known secret)."""
    response = await http.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    KNOWN_SECRETS.add(token)
    KNOWN_SECRETS.add(response.json()["refresh_token"])
    return token


@pytest.fixture
async def redis_namespace(redis_url: str) -> AsyncIterator[str]:
    """A rate-limit namespace of its own in the test Redis, removed afterwards."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield namespace
    client: Redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
