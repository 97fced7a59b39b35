"""Every error is an RFC 9457 problem; hostile bodies get a 4xx, never a 500."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import text

from assay.accounts import service as accounts
from assay.app import create_app
from assay.audit.service import CLI
from assay.core.db import DbSession
from assay.core.errors import HTTP_SLUGS, AssayError, Conflict, error_catalogue
from assay.core.permissions import ALL_PERMISSIONS
from assay.core.principal import PLATFORM
from assay.core.routes import iter_api_routes
from assay.http.problems import PROBLEM_CONTENT_TYPE
from assay.orgs import service as orgs
from assay.settings import Settings
from tests.support.identity import (
    Member,
    bearer,
    enrol_totp,
    known_secret,
    login,
    next_code,
    strong_password,
)

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "request_id"}


class Probe(BaseModel):
    name: str = Field(max_length=50)
    count: int = Field(ge=0, le=1000)
    tags: list[str] = Field(default_factory=list, max_length=10)


def _add_probe_routes(app: FastAPI) -> None:
    @app.post("/probe/json")
    async def accept_json(body: Probe) -> dict[str, int]:
        return {"count": body.count}

    @app.get("/probe/conflict")
    async def conflict() -> None:
        raise Conflict("The name is taken.")

    @app.get("/probe/crash")
    async def crash() -> None:
        internal = "psycopg.OperationalError: password authentication failed for 'root'"
        raise RuntimeError(internal)


@pytest.fixture
async def probe_client(
    settings_factory: Callable[..., Settings], tmp_path: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_factory(max_body_bytes=64 * 1024))
    _add_probe_routes(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body.keys() >= PROBLEM_MEMBERS
    assert body["status"] == status
    assert str(body["type"]).startswith("urn:assay:problem:")
    assert body["request_id"] == response.headers["x-request-id"]
    return dict(body)


async def test_unknown_route_is_a_not_found_problem(probe_client: httpx.AsyncClient) -> None:
    body = assert_problem(await probe_client.get("/nowhere"), 404)
    assert body["instance"] == "/nowhere"
    assert body["type"] == "urn:assay:problem:not-found"


async def test_wrong_method_is_a_problem(probe_client: httpx.AsyncClient) -> None:
    assert_problem(await probe_client.delete("/livez"), 405)


async def test_domain_error_renders_its_catalogue_entry(probe_client: httpx.AsyncClient) -> None:
    body = assert_problem(await probe_client.get("/probe/conflict"), 409)
    assert body["type"] == "urn:assay:problem:conflict"
    assert body["detail"] == "The name is taken."


async def test_unexpected_exception_is_a_bare_500_and_is_logged(
    probe_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await probe_client.get("/probe/crash")
    body = assert_problem(response, 500)
    assert "password" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert body["type"] == "urn:assay:problem:internal-error"
    logged = "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert "unhandled_exception" in logged
    assert "RuntimeError" in logged


async def test_validation_errors_list_every_failing_field_without_echoing_input(
    probe_client: httpx.AsyncClient,
) -> None:
    secret_value = "x" * 60
    response = await probe_client.post("/probe/json", json={"name": secret_value, "count": -1})
    body = assert_problem(response, 422)
    fields = {e["field"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"body.name", "body.count"}
    assert secret_value not in response.text


ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
_DOC_ROW = re.compile(r"^\| `([a-z0-9-]+)` \| (\d{3}) \|", re.MULTILINE)


def _every_error_class() -> list[type[AssayError]]:
    found: list[type[AssayError]] = [AssayError]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found


def test_catalogue_holds_every_error_class_a_feature_defines() -> None:
    catalogue = error_catalogue()
    slugs = {cls.slug for cls in catalogue}
    assert {cls.slug for cls in _every_error_class()} == slugs
    # Errors that feature packages introduce, not only core's.
    assert {"sso-sign-in-failed", "sso-provider-unavailable"} <= slugs
    assert len(catalogue) == len(slugs)


def test_catalogue_slugs_and_statuses_are_unique() -> None:
    introduced = [cls for cls in _every_error_class() if "slug" in vars(cls)]
    slugs = [cls.slug for cls in introduced]
    assert len(slugs) == len(set(slugs)), "two classes introduce the same problem type"
    status_of: dict[str, set[int]] = {}
    for cls in _every_error_class():
        status_of.setdefault(cls.slug, set()).add(cls.status)
    assert {slug: s for slug, s in status_of.items() if len(s) > 1} == {}
    assert all(400 <= cls.status < 600 for cls in _every_error_class())
    # The framework's own answers do not reuse a type with another status.
    for status, slug in HTTP_SLUGS.items():
        assert status_of.get(slug, {status}) == {status}, slug


def test_errors_doc_lists_every_problem_type_with_its_status() -> None:
    documented = {slug: int(status) for slug, status in _DOC_ROW.findall(ERRORS_DOC.read_text())}
    expected = {cls.slug: cls.status for cls in error_catalogue()}
    expected.update({slug: status for status, slug in HTTP_SLUGS.items()})
    assert documented == expected


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE_BODIES: list[tuple[str, bytes, str]] = [
    ("malformed-json", b'{"name": "a", "count": ', "application/json"),
    ("trailing-garbage", b'{"name": "a", "count": 1} xyz', "application/json"),
    ("wrong-content-type", b'{"name": "a", "count": 1}', "text/plain"),
    ("form-instead-of-json", b"name=a&count=1", "application/x-www-form-urlencoded"),
    ("huge-integer", b'{"name": "a", "count": ' + b"9" * 5000 + b"}", "application/json"),
    ("huge-exponent", b'{"name": "a", "count": 1e999999}', "application/json"),
    ("nan", b'{"name": "a", "count": NaN}', "application/json"),
    (
        "deep-nesting",
        b'{"name": "a", "count": 1, "tags": ' + _deep(20000) + b"}",
        "application/json",
    ),
    ("invalid-utf8", b'{"name": "\xff\xfe\xfd", "count": 1}', "application/json"),
    ("oversized", b'{"name": "' + b"a" * (70 * 1024) + b'", "count": 1}', "application/json"),
    ("empty", b"", "application/json"),
    ("json-array", b"[1, 2, 3]", "application/json"),
    ("null", b"null", "application/json"),
    # Text PostgreSQL cannot store (U+0000) or no encoder can write (an unpaired
    # surrogate), in fields the sign-in routes look up in the database.
    (
        "nul-escape",
        b'{"email": "a\\u0000b@example.org", "password": "pass\\u0000word-long-enough"}',
        "application/json",
    ),
    (
        "lone-surrogate",
        b'{"email": "\\ud800@example.org", "password": "pass\\udfffword-long-enough"}',
        "application/json",
    ),
    (
        "lone-surrogate-key",
        b'{"records": [{"\\udc00": 1}], "record": {"\\ud83d": 1}}',
        "application/json",
    ),
]


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Rate limits have their own tests; here every route must see every payload.
UNLIMITED = dict.fromkeys(
    (
        "rate_limit_default",
        "rate_limit_auth_per_address",
        "rate_limit_auth_per_account",
        "rate_limit_management",
        "rate_limit_scoring_per_key",
        "rate_limit_scoring_per_org",
    ),
    "1000000/minute",
)


def _body_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) whose route takes a request body, however it was included."""
    return [
        (method, route.path)
        for route in iter_api_routes(app)
        if route.body_field is not None
        for method in sorted(route.methods & BODY_METHODS)
    ]


def _concrete(path: str) -> str:
    # Path parameters get a well-formed id, so the request reaches body parsing.
    return re.sub(r"\{[^}]+\}", "0b9ac3b1-2f6c-4f43-9a53-5c1d8f0e7a21", path)


async def _credentials(app: FastAPI, http: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    """Headers of an owner (token), an API key with every permission, a platform admin."""
    identity = app.state.identity
    passwords = {"owner": strong_password(), "admin": strong_password()}
    async with app.state.database.sessionmaker() as db:
        owner = await accounts.create_user(
            db, identity, email="owner@example.org", password=passwords["owner"]
        )
        org = await orgs.create_organisation(db, CLI, PLATFORM, name="Hostile", slug=None)
        await orgs.add_member(db, CLI, PLATFORM, org.id, owner, "owner")
        await accounts.create_user(
            db,
            identity,
            email="admin@example.org",
            password=passwords["admin"],
            is_platform_admin=True,
        )
        await db.commit()
    owner_member = Member("owner@example.org", passwords["owner"], owner.id, org.id, org.slug)
    owner_token = (await login(http, owner_member))["access_token"]
    key = await http.post(
        "/v1/org/api-keys",
        json={"name": "hostile", "scopes": sorted(ALL_PERMISSIONS)},
        headers=bearer(owner_token),
    )
    assert key.status_code == 201, key.text
    api_key = known_secret(key.json()["key"])
    admin = Member("admin@example.org", passwords["admin"], owner.id, None, None)
    enrolment_token = (await login(http, admin))["access_token"]
    totp_secret, _ = await enrol_totp(http, enrolment_token)
    challenge = (await login(http, admin))["challenge"]
    mfa = await http.post(
        "/v1/auth/mfa", json={"challenge": challenge, "code": next_code(totp_secret)}
    )
    assert mfa.status_code == 200, mfa.text
    return {
        "api_key": {"x-api-key": api_key},
        "owner": bearer(owner_token),
        "admin": bearer(known_secret(mfa.json()["access_token"])),
    }


async def test_hostile_bodies_get_a_4xx_problem_on_every_route_that_takes_a_body(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    app = create_app(
        settings_factory(database_url=database_url, max_body_bytes=64 * 1024, **UNLIMITED)
    )
    routes = _body_routes(app)
    assert len(routes) > 25, routes  # the real API, not only a probe route
    assert ("POST", "/v1/models/{name}/predict") in routes
    assert ("POST", "/v2/models/{name}/infer") in routes
    failures: list[str] = []
    reached_the_body = 0
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            credentials = await _credentials(app, http)
            for case, payload, content_type in HOSTILE_BODIES:
                for method, path in routes:
                    # The credential the route accepts, so its body is really parsed.
                    kinds = ["admin"] if path.startswith("/v1/admin") else ["api_key", "owner"]
                    for kind in kinds:
                        response = await http.request(
                            method,
                            _concrete(path),
                            content=payload,
                            headers={"content-type": content_type, **credentials[kind]},
                        )
                        if response.status_code not in (401, 403):
                            reached_the_body += 1
                            break
                    problem = response.headers.get("content-type") == PROBLEM_CONTENT_TYPE
                    if not 400 <= response.status_code < 500 or not problem:
                        failures.append(
                            f"{case}: {method} {path} -> {response.status_code} "
                            f"{response.text[:200]}"
                        )
    assert failures == []
    # Nearly every request got past authentication (a few routes refuse every credential
    # kind above, such as changing one's own password with an API key).
    assert reached_the_body >= 0.9 * len(routes) * len(HOSTILE_BODIES)


def test_the_probe_route_is_not_a_body_route_of_the_real_api(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_app(settings_factory())
    _add_probe_routes(app)
    assert ("POST", "/probe/json") in _body_routes(app)


async def test_oversized_body_is_refused_while_streaming_without_content_length(
    probe_client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(100):
            yield b"a" * 1024
        yield b'", "count": 1}'

    response = await probe_client.post(
        "/probe/json", content=chunks(), headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 413)
    assert body["type"] == "urn:assay:problem:payload-too-large"


async def test_declared_oversized_body_is_refused_before_reading(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.post(
        "/probe/json",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": str(10**9)},
    )
    assert_problem(response, 413)


async def test_a_unique_constraint_race_is_a_409_not_a_500(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_app(settings_factory())

    @app.post("/probe/duplicate")
    async def duplicate(db: DbSession) -> dict[str, str]:
        for _ in range(2):
            await db.execute(
                text(
                    "INSERT INTO organisations (id, slug, name, status, mfa_required, "
                    "mfa_required_roles, created_at, updated_at) VALUES "
                    "(:id, 'same', 'Same', 'active', false, '[]', :now, :now)"
                ),
                {"id": uuid.uuid4().hex, "now": "2026-01-01 00:00:00"},
            )
        return {"written": "twice"}

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post("/probe/duplicate")
    body = assert_problem(response, 409)
    assert "IntegrityError" not in response.text
    assert body["type"] == "urn:assay:problem:conflict"
