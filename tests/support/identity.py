"""Identity fixtures: users, organisations and signed-in clients, built through the
same services the API and CLI use."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import httpx
import pyotp
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from redis.asyncio import Redis

from assay.accounts import service as accounts
from assay.app import create_app
from assay.audit.service import CLI
from assay.auth.deps import IdentityContext
from assay.core.principal import PLATFORM
from assay.orgs import service as orgs
from assay.settings import Settings
from tests.conftest import IN_CI, KNOWN_SECRETS, REDIS_URL, require_service

WORDS = [
    "violet",
    "quartz",
    "harbour",
    "lantern",
    "meadow",
    "copper",
    "falcon",
    "willow",
    "ember",
    "glacier",
    "orchid",
    "saffron",
    "tundra",
    "cobalt",
    "juniper",
    "marble",
]


def strong_password() -> str:
    """A random passphrase that passes the policy, registered as a known secret."""
    words = [secrets.choice(WORDS) for _ in range(4)]
    value = "-".join(words) + f"-{secrets.randbelow(10**6):06d}"
    KNOWN_SECRETS.add(value)
    return value


@dataclass
class Member:
    email: str
    password: str
    user_id: uuid.UUID
    org_id: uuid.UUID | None
    org_slug: str | None
    totp_secret: str | None = None


def known_secret(value: str) -> str:
    """Register a password or token a test sends, so the log check looks for it."""
    KNOWN_SECRETS.add(value)
    return value


def bearer(token: str) -> dict[str, str]:
    KNOWN_SECRETS.add(token)
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def identity(app: FastAPI) -> IdentityContext:
    context: IdentityContext = app.state.identity
    return context


MakeMember = Callable[..., Awaitable[Member]]


async def new_member(
    app: FastAPI,
    *,
    role: str = "owner",
    org_slug: str | None = None,
    new_org: bool = True,
    platform_admin: bool = False,
    email: str | None = None,
) -> Member:
    """Create a user (and organisation unless given) with a role in it, in `app`."""
    identity: IdentityContext = app.state.identity
    password = strong_password()
    address = email or f"user-{uuid.uuid4().hex[:10]}@example.org"
    async with app.state.database.sessionmaker() as db:
        user = await accounts.create_user(
            db, identity, email=address, password=password, is_platform_admin=platform_admin
        )
        org_id = None
        slug = org_slug
        if org_slug is not None:
            from sqlalchemy import select

            from assay.orgs.models import Organisation

            org = (
                await db.execute(select(Organisation).where(Organisation.slug == org_slug))
            ).scalar_one()
            org_id = org.id
        elif new_org:
            org = await orgs.create_organisation(
                db, CLI, PLATFORM, name=f"Org {uuid.uuid4().hex[:8]}", slug=None
            )
            org_id, slug = org.id, org.slug
        if org_id is not None:
            await orgs.add_member(db, CLI, PLATFORM, org_id, user, role)
        await db.commit()
        return Member(address, password, user.id, org_id, slug)


@pytest.fixture
def make_member(app: FastAPI) -> MakeMember:
    """Create a user (and organisation unless given) with a role in it."""

    async def build(**options: Any) -> Member:
        return await new_member(app, **options)

    return build


# --- apps with real limits, on the in-process backend and on Redis ------------------------


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """Rate limits and the auth cache in process, or shared through the test Redis."""
    if request.param == "redis":
        require_service("redis")
    return str(request.param)


RunningApp = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]


@pytest.fixture
async def running_app(
    settings_factory: Callable[..., Settings], database_url: str, backend: str
) -> AsyncIterator[RunningApp]:
    """`async with running_app(**settings) as (app, client):` on the chosen backend.

    Client addresses come from X-Forwarded-For (the test client is a trusted proxy), so
    a test can rotate them. Redis keys of the run are removed afterwards.
    """
    namespaces: list[str] = []

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
        values: dict[str, Any] = {"database_url": database_url, "trusted_proxies": ["127.0.0.1"]}
        if backend == "redis":
            namespace = f"t{uuid.uuid4().hex[:12]}"
            namespaces.append(namespace)
            values.update(redis_url=REDIS_URL, rate_limit_namespace=namespace)
        values.update(overrides)
        application = create_app(settings_factory(**values))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(
                app=application, raise_app_exceptions=False, client=("127.0.0.1", 50000)
            )
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield application, http

    yield run
    if namespaces:
        redis: Redis = Redis.from_url(REDIS_URL)
        try:
            for namespace in namespaces:
                keys = [key async for key in redis.scan_iter(match=f"{namespace}:*")]
                if keys:
                    await redis.delete(*keys)
        finally:
            await redis.aclose()


@dataclass
class PrivateRedis:
    """A redis-server of the test's own, on a free port, that the test may stop."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(free_port: int, tmp_path: Any) -> Iterator[PrivateRedis]:
    """Its own redis-server (no persistence), so that stopping it disturbs no other test."""
    with private_redis_server(free_port, tmp_path) as server:
        yield server


@contextmanager
def private_redis_server(free_port: int, tmp_path: Any) -> Iterator[PrivateRedis]:
    """A redis-server on `free_port`, stopped on exit (see the `private_redis` fixture)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is not installed and CI=true")
        pytest.skip("redis-server is not installed")
    arguments = ["--port", str(free_port), "--bind", "127.0.0.1", "--save", ""]
    arguments += ["--appendonly", "no", "--dir", str(tmp_path)]
    process = subprocess.Popen(
        [binary, *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = PrivateRedis(f"redis://127.0.0.1:{free_port}/0", process)
    try:
        # Wait until it accepts connections (a readiness wait, not an assertion on time).
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", free_port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"redis-server exited with {process.returncode}")
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start")
        yield server
    finally:
        server.stop()


async def login(client: httpx.AsyncClient, member: Member, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/login",
        json={"email": member.email, "password": member.password, **extra},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    for key in ("access_token", "refresh_token", "challenge"):
        if key in body:
            KNOWN_SECRETS.add(body[key])
    return body


async def enrol_totp(client: httpx.AsyncClient, token: str) -> tuple[str, list[str]]:
    started = await client.post("/v1/me/mfa/totp", headers=bearer(token))
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    KNOWN_SECRETS.add(secret)
    code = pyotp.TOTP(secret).now()
    confirmed = await client.post(
        "/v1/me/mfa/totp/confirm", json={"code": code}, headers=bearer(token)
    )
    assert confirmed.status_code == 200, confirmed.text
    codes: list[str] = confirmed.json()["backup_codes"]
    KNOWN_SECRETS.update(codes)
    return secret, codes


@pytest.fixture
async def owner(make_member: MakeMember) -> Member:
    return await make_member(role="owner")


@pytest.fixture
async def owner_token(client: httpx.AsyncClient, owner: Member) -> str:
    body = await login(client, owner)
    token: str = body["access_token"]
    return token


async def platform_admin_token(client: httpx.AsyncClient, make_member: MakeMember) -> str:
    """A full-scope access token of a new platform administrator (MFA enrolled)."""
    admin = await make_member(platform_admin=True)
    restricted = (await login(client, admin))["access_token"]
    secret, _ = await enrol_totp(client, restricted)
    challenge = (await login(client, admin))["challenge"]
    done = await client.post(
        "/v1/auth/mfa", json={"challenge": challenge, "code": next_code(secret)}
    )
    assert done.status_code == 200, done.text
    token: str = done.json()["access_token"]
    KNOWN_SECRETS.add(token)
    return token


async def events(app: FastAPI, action: str, **where: Any) -> list[Any]:
    """Security events with this action (and these column values), oldest first."""
    from sqlalchemy import select

    from assay.audit.models import SecurityEvent

    statement = select(SecurityEvent).where(SecurityEvent.action == action)
    for column, value in where.items():
        statement = statement.where(getattr(SecurityEvent, column) == value)
    async with app.state.database.sessionmaker() as db:
        rows = await db.execute(statement.order_by(SecurityEvent.occurred_at))
        return list(rows.scalars())


def next_code(secret: str) -> str:
    """The code of the next time step: the current one was spent on enrolment, and a
    code is accepted only once (one step of clock drift is allowed)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


# --- mail: a real SMTP server on loopback ---------------------------------------------------


class _Collector:
    """aiosmtpd handler keeping every message it is given."""

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.messages: list[EmailMessage] = []
        self.delay_seconds = delay_seconds

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        raw = envelope.original_content or envelope.content
        self.messages.append(BytesParser(policy=default_policy).parsebytes(raw))
        return "250 Message accepted"


@dataclass
class SmtpServer:
    host: str
    port: int
    collector: _Collector


@pytest.fixture
def smtp_server(free_port: int) -> Iterator[SmtpServer]:
    """An SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    collector = _Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", free_port, collector)
    finally:
        controller.stop()


def smtp_settings(server: SmtpServer) -> dict[str, Any]:
    return {"smtp_host": server.host, "smtp_port": server.port, "smtp_tls": "none"}


_LINK = re.compile(r"(https?://\S+)#token=([A-Za-z0-9_-]+)")


@dataclass
class Mailbox:
    """What the SMTP server received, read after every queued delivery has finished."""

    identity: IdentityContext
    server: SmtpServer

    async def messages_to(self, address: str) -> list[EmailMessage]:
        await self.identity.mail.wait_idle()
        return [m for m in self.server.collector.messages if m["To"] == address]

    async def last_to(self, address: str) -> EmailMessage:
        messages = await self.messages_to(address)
        assert messages, f"no mail to {address}"
        return messages[-1]

    async def count(self) -> int:
        await self.identity.mail.wait_idle()
        return len(self.server.collector.messages)


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_of(message: EmailMessage) -> tuple[str, str]:
    """The page URL and the token of the link in a message (the token becomes a known secret)."""
    found = _LINK.search(body_of(message))
    assert found, body_of(message)
    KNOWN_SECRETS.add(found.group(2))
    return found.group(1), found.group(2)


@pytest.fixture
def mailbox(identity: IdentityContext, smtp_server: SmtpServer) -> Mailbox:
    return Mailbox(identity, smtp_server)
