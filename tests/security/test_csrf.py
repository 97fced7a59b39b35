"""CSRF protection for cookie sessions, and safe methods that are safe (SECURITY.md item 13).

Every test runs against a real app on SQLite and PostgreSQL, with console sessions made
through `POST /v1/auth/session`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import event

from assay.auth.csrf import csrf_token
from assay.core.routes import iter_api_routes
from tests.jobs.support import wait_for
from tests.support.identity import MakeMember, Member, bearer, enrol_totp, login, next_code
from tests.support.models import register_rules_model

from ..conftest import KNOWN_SECRETS

ORIGIN = "http://127.0.0.1:8000"  # the default public URL's origin
LISTED = "https://console.example.org"
COOKIE = "assay_session"


@pytest.fixture
def settings(settings_factory: Any, database_url: str) -> Any:
    return settings_factory(database_url=database_url, cors_origins=[LISTED])


async def console_session(client: httpx.AsyncClient, member: Member) -> str:
    """Sign in to the console; the client keeps the cookie. Returns the CSRF token."""
    response = await client.post(
        "/v1/auth/session", json={"email": member.email, "password": member.password}
    )
    assert response.status_code == 200, response.text
    KNOWN_SECRETS.add(response.cookies[COOKIE])
    client.cookies.set(COOKIE, response.cookies[COOKIE])
    token: str = response.json()["csrf_token"]
    return token


def reason(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    value: str = response.json()["reason"]
    return value


async def rename(client: httpx.AsyncClient, name: str, **headers: str) -> httpx.Response:
    return await client.patch("/v1/me", json={"display_name": name}, headers=headers)


# --- tokens ------------------------------------------------------------------------------


async def test_a_write_needs_a_token_of_this_session(
    client: httpx.AsyncClient, owner: Member
) -> None:
    other_session = await console_session(client, owner)
    token = await console_session(client, owner)  # the client now holds this session
    missing = await rename(client, "Ada", origin=ORIGIN)
    forged = await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": "0" * 64})
    garbled = await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": "1700000000.zz"})
    other = await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": other_session})
    assert reason(missing) == "token-missing"
    assert reason(forged) == "token-malformed"
    assert reason(garbled) == "token-invalid"
    assert reason(other) == "token-invalid"
    ok = await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": token})
    assert ok.status_code == 200, ok.text
    assert ok.json()["display_name"] == "Ada"


async def test_a_token_expires_and_a_fresh_one_is_issued(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    max_age = app.state.settings.csrf_token_max_age_seconds
    token = await console_session(client, owner)
    with time_machine.travel(time.time() + max_age + 5, tick=False):
        expired = await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": token})
        fresh = await client.get("/v1/auth/csrf-token")
        assert fresh.status_code == 200, fresh.text
        assert fresh.json()["expires_in"] == max_age
        assert fresh.headers["cache-control"] == "no-store"
        renewed = fresh.json()["csrf_token"]
        ok = await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": renewed})
    assert reason(expired) == "token-expired"
    assert "/v1/auth/csrf-token" in expired.json()["detail"]
    assert ok.status_code == 200, ok.text


async def test_a_token_from_the_future_is_refused(
    client: httpx.AsyncClient, owner: Member, app: FastAPI
) -> None:
    """Issued-at is inside the MAC, so it cannot be moved; one minted with a clock far
    ahead (or by someone holding the key) is still not accepted early."""
    await console_session(client, owner)
    me = await client.get("/v1/me/sessions")
    current = next(s for s in me.json() if s["current"])
    ahead = csrf_token(
        app.state.identity.csrf_key, uuid.UUID(current["id"]), int(time.time()) + 3600
    )
    response = await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": ahead})
    assert reason(response) == "token-expired"


async def test_issued_at_cannot_be_edited(client: httpx.AsyncClient, owner: Member) -> None:
    token = await console_session(client, owner)
    issued, mac = token.split(".")
    moved = f"{int(issued) + 60}.{mac}"
    assert reason(await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": moved})) == (
        "token-invalid"
    )


@pytest.mark.parametrize(
    "issued_at",
    [
        "9" * 13,  # one digit past the cap
        "9" * 20,  # past eight bytes: it cannot even go into the MAC
        "9" * 30,
        "1" + "0" * 90,  # the longest a token may be
    ],
)
async def test_an_issued_at_too_long_is_malformed_not_a_crash(
    client: httpx.AsyncClient, owner: Member, issued_at: str
) -> None:
    await console_session(client, owner)
    response = await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": f"{issued_at}.ab"})
    assert reason(response) == "token-malformed"
    assert (await client.get("/v1/me")).json()["display_name"] != "Ada"


async def test_an_issued_at_of_twelve_digits_is_checked_like_any_other(
    client: httpx.AsyncClient, owner: Member
) -> None:
    await console_session(client, owner)
    response = await rename(client, "Ada", origin=ORIGIN, **{"x-csrf-token": "9" * 12 + ".ab"})
    assert reason(response) == "token-invalid"


async def test_credentials_without_a_session_get_no_token(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    created = await client.post(
        "/v1/org/api-keys",
        json={"name": "reader", "scopes": ["members:read"]},
        headers=bearer(owner_token),
    )
    key = created.json()["key"]
    KNOWN_SECRETS.add(key)
    response = await client.get("/v1/auth/csrf-token", headers={"x-api-key": key})
    assert response.status_code == 403
    assert (await client.get("/v1/auth/csrf-token")).status_code == 401


# --- origins -----------------------------------------------------------------------------


async def test_the_origin_must_be_ours_or_listed(client: httpx.AsyncClient, owner: Member) -> None:
    token = await console_session(client, owner)
    csrf = {"x-csrf-token": token}
    foreign = await rename(client, "Ada", origin="https://evil.example", **csrf)
    look_alike = await rename(client, "Ada", origin=LISTED + ".evil.example", **csrf)
    listed = await rename(client, "Ada", origin=LISTED, **csrf)
    own = await rename(client, "Ada", origin=ORIGIN, **csrf)
    assert reason(foreign) == "origin-not-allowed"
    assert reason(look_alike) == "origin-not-allowed"
    assert (listed.status_code, own.status_code) == (200, 200)


async def test_without_origin_the_referer_decides(client: httpx.AsyncClient, owner: Member) -> None:
    token = await console_session(client, owner)
    csrf = {"x-csrf-token": token}
    own_page = await rename(client, "Ada", referer=ORIGIN + "/console/settings?tab=1", **csrf)
    listed_page = await rename(client, "Ada", referer=LISTED + "/app", **csrf)
    foreign_page = await rename(client, "Ada", referer="https://evil.example/page", **csrf)
    assert (own_page.status_code, listed_page.status_code) == (200, 200)
    assert reason(foreign_page) == "origin-not-allowed"


@pytest.mark.parametrize(
    "referer", ["http://[oops/", "http://[::1", "https://[zz]/page", "http://x]/", ":"]
)
async def test_a_referer_that_is_no_url_is_not_allowed(
    client: httpx.AsyncClient, owner: Member, referer: str
) -> None:
    token = await console_session(client, owner)
    response = await rename(client, "Ada", referer=referer, **{"x-csrf-token": token})
    assert reason(response) == "origin-not-allowed"
    assert (await client.get("/v1/me")).json()["display_name"] != "Ada"


async def test_neither_origin_nor_referer_is_refused(
    client: httpx.AsyncClient, owner: Member
) -> None:
    token = await console_session(client, owner)
    response = await rename(client, "Ada", **{"x-csrf-token": token})
    assert reason(response) == "origin-missing"


async def test_reads_need_no_token(client: httpx.AsyncClient, owner: Member) -> None:
    await console_session(client, owner)
    assert (await client.get("/v1/me")).status_code == 200
    assert (await client.head("/v1/me")).status_code == 200


async def test_bearer_and_api_key_requests_need_no_token(
    client: httpx.AsyncClient, owner: Member
) -> None:
    token = (await login(client, owner))["access_token"]
    by_token = await rename(client, "Grace", **bearer(token))
    created = await client.post(
        "/v1/org/api-keys",
        json={"name": "writer", "scopes": ["models:write"]},
        headers=bearer(token),
    )
    key = created.json()["key"]
    KNOWN_SECRETS.add(key)
    by_key = await client.post(
        "/v1/models",
        json={"name": "made-by-a-key", "kind": "rules"},
        headers={"x-api-key": key, "origin": "https://evil.example"},
    )
    assert by_token.status_code == 200
    assert by_key.status_code == 201, by_key.text


# --- HEAD --------------------------------------------------------------------------------


async def test_head_is_answered_by_the_get_route_without_a_body(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    for path, headers in (
        ("/livez", {}),
        ("/readyz", {}),
        ("/v1/me", bearer(owner_token)),
        ("/v1/org/members", bearer(owner_token)),
    ):
        got = await client.get(path, headers=headers)
        head = await client.head(path, headers=headers)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"", path
        assert head.headers["content-length"] == got.headers["content-length"], path
        assert head.headers["content-type"] == got.headers["content-type"], path
    assert (await client.head("/v1/me")).status_code == 401
    # A route without GET still has no HEAD.
    assert (await client.head("/v1/auth/login")).status_code == 405


# --- safe methods change nothing ------------------------------------------------------------

# GET routes allowed to write, each for a reason. Nothing else may.
WRITING_GET_ROUTES: dict[str, str] = {
    # The OAuth authorization request: state, nonce and PKCE verifier must be stored
    # before the browser is sent to the provider (it is a top-level navigation, so
    # it cannot be a POST). Only prepares a sign-in; changes no account.
    "/v1/auth/sso/{provider}/start": "stores the sign-in attempt",
    # The provider sends the browser back here with a GET (OIDC Authorization Code
    # flow); the attempt is consumed and the session created. Bound to the attempt's
    # state cookie, so a forged callback finds no attempt.
    "/v1/auth/sso/{provider}/callback": "completes the sign-in",
    # Reads of the audit trail are audit events themselves (issue 12), and verify and
    # export seal pending events into the chain first (export also signs a checkpoint at
    # the head). None changes anything the caller owns; a forged cross-site GET would
    # only leave a record that it happened.
    "/v1/audit/events": "records the audit.read event",
    "/v1/audit/verify": "seals pending events, records audit.verified",
    "/v1/audit/export": "seals pending events, signs a checkpoint, records audit.exported",
}
# Authentication's own bookkeeping, on any method: when a session or key was last used.
# Throttled (at most once a minute) and not a change the caller asked for.
_BOOKKEEPING = re.compile(
    r"^UPDATE (sessions|api_keys) SET (last_seen_at|last_used_at)", re.IGNORECASE
)
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE|REPLACE)\b", re.IGNORECASE)


@contextmanager
def recorded_writes(app: FastAPI) -> Iterator[list[str]]:
    writes: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if _WRITE.match(statement) and not _BOOKKEEPING.match(statement.strip()):
            writes.append(" ".join(statement.split())[:120])

    engine = app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield writes
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _admin_token(client: httpx.AsyncClient, make_member: MakeMember) -> str:
    admin = await make_member(platform_admin=True, new_org=False)
    enrolment = (await login(client, admin))["access_token"]
    secret, _codes = await enrol_totp(client, enrolment)
    challenge = (await login(client, admin))["challenge"]
    done = await client.post(
        "/v1/auth/mfa", json={"challenge": challenge, "code": next_code(secret)}
    )
    assert done.status_code == 200, done.text
    token: str = done.json()["access_token"]
    KNOWN_SECRETS.add(token)
    return token


async def test_no_get_route_writes(
    app: FastAPI, client: httpx.AsyncClient, owner: Member, make_member: MakeMember
) -> None:
    owner_token = (await login(client, owner))["access_token"]
    admin_token = await _admin_token(client, make_member)
    deployed = await register_rules_model(client, owner_token, name="walked")
    assert deployed.status_code == 201, deployed.text
    job = await client.post(
        "/v1/jobs",
        json={"kind": "batch_score", "params": {"model": "walked", "records": [{"amount": 1}]}},
        headers=bearer(owner_token),
    )
    assert job.status_code == 202, job.text
    # A finished job: its own work writes nothing while the GET routes are walked.
    await wait_for(client, owner_token, job.json()["id"])
    # A webhook (a public address literal: never resolved, never called here) and the
    # delivery of its test message.
    webhook = await client.post(
        "/v1/webhooks",
        json={"url": "https://93.184.215.14/hook", "event_types": ["job.succeeded"]},
        headers=bearer(owner_token),
    )
    assert webhook.status_code == 201, webhook.text
    KNOWN_SECRETS.add(webhook.json()["secret"])
    webhook_id = webhook.json()["id"]
    delivery = await client.post(f"/v1/webhooks/{webhook_id}/test", headers=bearer(owner_token))
    assert delivery.status_code == 202, delivery.text
    # Requests to every GET route with real path values, so each runs its real query.
    values = {
        "name": "walked",
        "version": "1",
        "provider": "none",
        "job_id": job.json()["id"],
        "webhook_id": webhook_id,
        "delivery_id": delivery.json()["id"],
        "lookup_id": "00000000-0000-4000-8000-000000000001",
        "entry_id": "00000000-0000-4000-8000-000000000002",
        "scan_id": "00000000-0000-4000-8000-000000000003",
        "record_id": "00000000-0000-4000-8000-000000000004",
        "run_id": "00000000-0000-4000-8000-000000000005",
    }
    called: list[tuple[str, int]] = []
    offenders: dict[str, list[str]] = {}
    for route in iter_api_routes(app):
        if "GET" not in (route.methods or ()):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path)
        token = admin_token if route.path.startswith("/v1/admin") else owner_token
        for method in ("GET", "HEAD"):
            with recorded_writes(app) as writes:
                response = await client.request(method, path, headers=bearer(token))
            called.append((f"{method} {route.path}", response.status_code))
            assert response.status_code < 500, (method, path, response.text)
            if writes and route.path not in WRITING_GET_ROUTES:
                offenders[f"{method} {route.path}"] = writes
    assert offenders == {}
    # The recorder sees writes: a PATCH through the same client is caught.
    with recorded_writes(app) as writes:
        renamed = await rename(client, "Control", **bearer(owner_token))
    assert renamed.status_code == 200
    assert any(statement.upper().startswith("UPDATE USERS") for statement in writes), writes
    # The walk reached the routes, not just their refusals.
    succeeded = {name for name, status in called if status == 200}
    for expected in ("GET /v1/models/{name}", "GET /v1/me/sessions", "GET /v1/admin/orgs"):
        assert expected in succeeded, called
    assert len(succeeded) >= 20, called
