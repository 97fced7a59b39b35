"""Every entry of docs/errors.md, triggered by a real request, answers as documented.

Each problem type in the catalogue table has a trigger here: a request (through the
application, or to a real server for what only the server itself answers) that must
come back with the documented status and type. A type added to the table without a
trigger, or a trigger whose answer drifts from the table, fails.
"""

from __future__ import annotations

import json
import re
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from assay.keys.models import DataKey
from assay.settings import Settings
from tests.conftest import new_secret
from tests.registry.test_model_lifecycle import (
    create,
    ml_manifest,
    point,
    predict,
    stored_path,
    upload,
)
from tests.security.test_server_limits import LOGIN, _exchange, _serve, _stop
from tests.support.identity import (
    MakeMember,
    Member,
    bearer,
    login,
    new_member,
    platform_admin_token,
)
from tests.support.models import auth

ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
PREFIX = "urn:assay:problem:"


def documented() -> dict[str, int]:
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (\d{3}) \|", ERRORS_DOC.read_text(), re.M)
    return {slug: int(status) for slug, status in rows}


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    token: str
    viewer_token: str
    artifacts: dict[str, bytes]
    monkeypatch: pytest.MonkeyPatch


Trigger = Callable[[Ctx], Awaitable[httpx.Response]]


async def _bad_request(ctx: Ctx) -> httpx.Response:
    return await ctx.client.post(
        "/v1/auth/login", content=b'{"email": ', headers={"content-type": "application/json"}
    )


async def _unauthorized(ctx: Ctx) -> httpx.Response:
    return await ctx.client.get("/v1/models")


async def _sso_sign_in_failed(ctx: Ctx) -> httpx.Response:
    return await ctx.client.get("/v1/auth/sso/gone/callback", params={"code": "x", "state": "y"})


async def _sso_provider_unavailable(ctx: Ctx) -> httpx.Response:
    return await ctx.client.get("/v1/auth/sso/gone/start")


async def _forbidden(ctx: Ctx) -> httpx.Response:
    return await ctx.client.post(
        "/v1/models", json={"name": "x", "kind": "rules"}, headers=bearer(ctx.viewer_token)
    )


async def _not_found(ctx: Ctx) -> httpx.Response:
    return await ctx.client.get("/v1/models/no-such-model", headers=auth(ctx.token))


async def _method_not_allowed(ctx: Ctx) -> httpx.Response:
    return await ctx.client.put("/v1/models", headers=auth(ctx.token))


async def _conflict(ctx: Ctx) -> httpx.Response:
    body = {"name": "twice", "kind": "rules"}
    await ctx.client.post("/v1/models", json=body, headers=auth(ctx.token))
    return await ctx.client.post("/v1/models", json=body, headers=auth(ctx.token))


async def _payload_too_large(ctx: Ctx) -> httpx.Response:
    await create(ctx.client, ctx.token, "big", "rules")
    # One form part over the 1 MiB part limit.
    return await ctx.client.post(
        "/v1/models/big/versions", data={"manifest": "x" * (1 << 20) + "x"}, headers=auth(ctx.token)
    )


async def _unsupported_media_type(ctx: Ctx) -> httpx.Response:
    return await ctx.client.post(
        "/v1/auth/login",
        content=json.dumps({"email": "a@example.org", "password": "p"}),
        headers={"content-type": "text/plain"},
    )


async def _validation_failed(ctx: Ctx) -> httpx.Response:
    return await ctx.client.post("/v1/auth/login", json={"email": "a@example.org"})


async def _invalid_model_definition(ctx: Ctx) -> httpx.Response:
    await create(ctx.client, ctx.token, "broken", "rules")
    manifest = {"schema": {"fields": [{"name": "a", "type": "complex"}]}, "spec": {"kind": "rules"}}
    return await ctx.client.post(
        "/v1/models/broken/versions",
        data={"manifest": json.dumps(manifest)},
        headers=auth(ctx.token),
    )


async def _invalid_artifact(ctx: Ctx) -> httpx.Response:
    await create(ctx.client, ctx.token, "garbage")
    return await upload(ctx.client, ctx.token, "garbage", b"not a lightgbm model at all")


async def _untrusted_artifact(ctx: Ctx) -> httpx.Response:
    await create(ctx.client, ctx.token, "pickled")
    return await upload(
        ctx.client, ctx.token, "pickled", ctx.artifacts["pickle"], manifest=ml_manifest("pickle")
    )


async def _runtime_not_installed(ctx: Ctx) -> httpx.Response:
    # "Not installed" in this process: a module set to None cannot be imported.
    ctx.monkeypatch.setitem(sys.modules, "xgboost", None)
    await create(ctx.client, ctx.token, "boosted")
    return await upload(
        ctx.client,
        ctx.token,
        "boosted",
        ctx.artifacts["xgboost-json"],
        manifest=ml_manifest("xgboost-json"),
    )


async def _rate_limited(ctx: Ctx) -> httpx.Response:
    # The application under test allows 3 sign-ins a minute from one address.
    answer = None
    for _ in range(4):
        answer = await ctx.client.post(
            "/v1/auth/login", json={"email": "nobody@example.org", "password": "wrong-1"}
        )
    assert answer is not None
    return answer


async def _internal_error(ctx: Ctx) -> httpx.Response:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        msg = "a bug"
        raise RuntimeError(msg)

    ctx.monkeypatch.setattr(ctx.app.state.registry, "list_models", broken)
    return await ctx.client.get("/v1/models", headers=auth(ctx.token))


async def _artifact_integrity_failed(ctx: Ctx) -> httpx.Response:
    # The store answers with another digest than the bytes it was given: a storage fault.
    store = ctx.app.state.registry.store
    real_put = store.put
    ctx.monkeypatch.setattr(store, "put", lambda data: real_put(data + b"\n"))
    await create(ctx.client, ctx.token, "lost")
    return await upload(ctx.client, ctx.token, "lost", ctx.artifacts["lightgbm"])


async def _dependency_unavailable(ctx: Ctx) -> httpx.Response:
    async def down() -> None:
        msg = "connection refused"
        raise ConnectionError(msg)

    ctx.monkeypatch.setattr(ctx.app.state.database, "ping", down)
    return await ctx.client.get("/readyz")


async def _model_unavailable(ctx: Ctx) -> httpx.Response:
    await create(ctx.client, ctx.token, "tampered")
    registered = await upload(ctx.client, ctx.token, "tampered", ctx.artifacts["lightgbm"])
    assert registered.status_code == 201, registered.text
    assert (await point(ctx.client, ctx.token, "tampered", 1)).status_code == 200
    stored_path(ctx.app, registered.json()["artifact_digest"]).write_bytes(b"tampered")
    for entry in ctx.app.state.registry.cache.loaded():
        ctx.app.state.registry.cache.evict(entry.version_id)
    return await predict(ctx.client, ctx.token, "tampered")


async def _webhook_destination_refused(ctx: Ctx) -> httpx.Response:
    # Loopback, and no allow-list opens it: refused before any connection.
    body = {"url": "https://127.0.0.1/hook", "event_types": ["job.succeeded"]}
    return await ctx.client.post("/v1/webhooks", json=body, headers=auth(ctx.token))


async def _provider_invalid(ctx: Ctx) -> httpx.Response:
    body = {"definition": {"format": "assay-provider/v1", "name": "x"}}
    return await ctx.client.put("/v1/providers/x", json=body, headers=auth(ctx.token))


async def _provider_not_found(ctx: Ctx) -> httpx.Response:
    return await ctx.client.get("/v1/providers/nothing-here", headers=auth(ctx.token))


async def _lookup_not_found(ctx: Ctx) -> httpx.Response:
    return await ctx.client.get(
        "/v1/lookups/00000000-0000-4000-8000-000000000000", headers=auth(ctx.token)
    )


async def _indicator_rejected(ctx: Ctx) -> httpx.Response:
    body = {"indicator": "169.254.169.254"}
    return await ctx.client.post("/v1/lookups", json=body, headers=auth(ctx.token))


async def _verdict_model_missing(ctx: Ctx) -> httpx.Response:
    body = {"indicator": "1.1.1.1"}
    return await ctx.client.post("/v1/lookups", json=body, headers=auth(ctx.token))


async def _target_not_found(ctx: Ctx) -> httpx.Response:
    return await ctx.client.get("/v1/targets/nothing-here", headers=auth(ctx.token))


async def _target_invalid(ctx: Ctx) -> httpx.Response:
    # The shape passes the schema; the URL's embedded credentials do not pass the guard.
    body = {"kind": "openai_chat", "url": "https://user:pw@ai.example/v1", "model": "m"}
    return await ctx.client.put("/v1/targets/x", json=body, headers=auth(ctx.token))


async def _scan_not_found(ctx: Ctx) -> httpx.Response:
    return await ctx.client.get(
        "/v1/scans/00000000-0000-4000-8000-000000000000", headers=auth(ctx.token)
    )


async def _a_target(ctx: Ctx) -> None:
    body = {"kind": "openai_chat", "url": "https://93.184.215.14/v1/chat", "model": "m"}
    saved = await ctx.client.put("/v1/targets/t", json=body, headers=auth(ctx.token))
    assert saved.status_code == 200, saved.text


async def _scan_invalid(ctx: Ctx) -> httpx.Response:
    await _a_target(ctx)
    body = {"target": "t", "probe_sets": ["no-such-set"]}
    return await ctx.client.post("/v1/scans", json=body, headers=auth(ctx.token))


async def _detectors_missing(ctx: Ctx) -> httpx.Response:
    await _a_target(ctx)
    return await ctx.client.post("/v1/scans", json={"target": "t"}, headers=auth(ctx.token))


async def _watchlist_entry_not_found(ctx: Ctx) -> httpx.Response:
    return await ctx.client.get(
        "/v1/watchlist/00000000-0000-4000-8000-000000000000", headers=auth(ctx.token)
    )


async def _already_watched(ctx: Ctx) -> httpx.Response:
    body = {"indicator": "1.1.1.1"}
    first = await ctx.client.post("/v1/watchlist", json=body, headers=auth(ctx.token))
    assert first.status_code == 201, first.text
    return await ctx.client.post("/v1/watchlist", json=body, headers=auth(ctx.token))


AdminCall = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


async def _as_platform_admin(ctx: Ctx, call: AdminCall) -> httpx.Response:
    """`call` by a new platform administrator, signed in from an address of its own (the
    catalogue's sign-in limit is 3 a minute per address, spent by the fixture)."""

    async def make_member(**options: Any) -> Member:
        return await new_member(ctx.app, **options)

    transport = httpx.ASGITransport(app=ctx.app, client=("203.0.113.24", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as admin:
        token = await platform_admin_token(admin, make_member)
        return await call(admin, auth(token))


async def _data_key_not_found(ctx: Ctx) -> httpx.Response:
    async def call(admin: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        return await admin.post("/v1/admin/keys/0badc0de/retire", headers=headers)

    return await _as_platform_admin(ctx, call)


async def _data_key_not_retirable(ctx: Ctx) -> httpx.Response:
    async def call(admin: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        active = ctx.app.state.identity.keyring.active_key_id
        return await admin.post(f"/v1/admin/keys/{active}/retire", headers=headers)

    return await _as_platform_admin(ctx, call)


async def _data_key_in_use(ctx: Ctx) -> httpx.Response:
    # The administrator's TOTP secret is sealed with the key the rotation deactivates.
    async def call(admin: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
        rotated = await admin.post("/v1/admin/keys/rotate", headers=headers)
        assert rotated.status_code == 201, rotated.text
        previous = rotated.json()["previous_key_id"]
        # Long enough ago for every process to have stopped sealing with it.
        async with ctx.app.state.database.sessionmaker() as db:
            await db.execute(
                update(DataKey)
                .where(DataKey.key_id == previous)
                .values(deactivated_at=datetime.now(UTC) - timedelta(hours=1))
            )
            await db.commit()
        return await admin.post(f"/v1/admin/keys/{previous}/retire", headers=headers)

    return await _as_platform_admin(ctx, call)


TRIGGERS: dict[str, Trigger] = {
    "bad-request": _bad_request,
    "unauthorized": _unauthorized,
    "sso-sign-in-failed": _sso_sign_in_failed,
    "forbidden": _forbidden,
    "not-found": _not_found,
    "method-not-allowed": _method_not_allowed,
    "conflict": _conflict,
    "payload-too-large": _payload_too_large,
    "unsupported-media-type": _unsupported_media_type,
    "validation-failed": _validation_failed,
    "invalid-model-definition": _invalid_model_definition,
    "invalid-artifact": _invalid_artifact,
    "untrusted-artifact": _untrusted_artifact,
    "runtime-not-installed": _runtime_not_installed,
    "rate-limited": _rate_limited,
    "internal-error": _internal_error,
    "artifact-integrity-failed": _artifact_integrity_failed,
    "dependency-unavailable": _dependency_unavailable,
    "sso-provider-unavailable": _sso_provider_unavailable,
    "model-unavailable": _model_unavailable,
    "webhook-destination-refused": _webhook_destination_refused,
    "provider-invalid": _provider_invalid,
    "provider-not-found": _provider_not_found,
    "lookup-not-found": _lookup_not_found,
    "indicator-rejected": _indicator_rejected,
    "verdict-model-missing": _verdict_model_missing,
    "watchlist-entry-not-found": _watchlist_entry_not_found,
    "target-not-found": _target_not_found,
    "target-invalid": _target_invalid,
    "scan-not-found": _scan_not_found,
    "scan-invalid": _scan_invalid,
    "data-key-not-found": _data_key_not_found,
    "data-key-not-retirable": _data_key_not_retirable,
    "data-key-in-use": _data_key_in_use,
    "detectors-missing": _detectors_missing,
    "already-watched": _already_watched,
}
# Answered by the HTTP server itself, before the application: tested on a real server.
SERVER_ANSWERS = ("request-timeout", "request-header-fields-too-large", "service-unavailable")


def test_every_documented_problem_type_has_a_trigger() -> None:
    assert set(TRIGGERS) | set(SERVER_ANSWERS) == set(documented())


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], database_url: str, free_port: int
) -> Settings:
    return settings_factory(
        database_url=database_url,
        rate_limit_auth_per_address="3/minute",
        oidc_providers=[
            {
                "name": "gone",
                "issuer": f"http://127.0.0.1:{free_port}",
                "client_id": "assay",
                "client_secret": new_secret(),
            }
        ],
    )


@pytest.mark.parametrize("slug", sorted(TRIGGERS))
async def test_each_problem_type_answers_as_documented(
    app: FastAPI,
    make_member: MakeMember,
    artifacts: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
    steady_rate_window: None,
    slug: str,
) -> None:
    owner = await make_member(role="owner")
    viewer = await make_member(role="viewer", org_slug=owner.org_slug)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        ctx = Ctx(
            app=app,
            client=client,
            token=(await login(client, owner))["access_token"],
            viewer_token=(await login(client, viewer))["access_token"],
            artifacts=artifacts,
            monkeypatch=monkeypatch,
        )
        answer = await TRIGGERS[slug](ctx)
    assert answer.headers["content-type"] == "application/problem+json", answer.text
    assert answer.json()["type"] == PREFIX + slug, answer.text
    assert answer.status_code == documented()[slug] == answer.json()["status"]


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    process, port = _serve(
        tmp_path_factory.mktemp("catalogue"),
        "server",
        ASSAY_MAX_HEADER_BYTES="4096",
        ASSAY_BODY_READ_TIMEOUT_SECONDS="1",
        ASSAY_MAX_CONCURRENCY="2",
    )
    try:
        yield port
    finally:
        _stop(process)


def _problem_of(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body.decode())["type"]


def _request_timeout(port: int) -> bytes:
    return _exchange(port, LOGIN + b"Content-Length: 100\r\n\r\n{")


def _header_fields_too_large(port: int) -> bytes:
    return _exchange(
        port, b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Fill: " + b"a" * 8000 + b"\r\n\r\n"
    )


def _service_unavailable(port: int) -> bytes:
    # An open connection counts: with one held, the next request is one too many.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
        held.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
        assert held.recv(65536).startswith(b"HTTP/1.1 200")
        return _exchange(port, b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")


SERVER_TRIGGERS: dict[str, Callable[[int], bytes]] = {
    "request-timeout": _request_timeout,
    "request-header-fields-too-large": _header_fields_too_large,
    "service-unavailable": _service_unavailable,
}


@pytest.mark.slow
@pytest.mark.parametrize("slug", SERVER_ANSWERS)
def test_each_answer_of_the_server_itself_is_as_documented(real_server: int, slug: str) -> None:
    status, problem_type = _problem_of(SERVER_TRIGGERS[slug](real_server))
    assert problem_type == PREFIX + slug
    assert status == documented()[slug]
