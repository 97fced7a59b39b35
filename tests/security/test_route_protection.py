"""Deny by default, proven over every route the app has, including ones added later."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from assay.app import UnprotectedRouteError, assert_deny_by_default, create_app
from assay.auth.deps import PERMISSION_ATTRIBUTE
from assay.auth.public_routes import PUBLIC_ROUTES, is_public
from assay.core.crypto import derive_key
from assay.core.permissions import ALL_PERMISSIONS
from assay.core.routes import iter_api_routes
from assay.orgs.models import CustomRole
from assay.settings import Settings
from tests.support.identity import MakeMember, bearer, login

from ..conftest import KNOWN_SECRETS

_PARAM = re.compile(r"\{([^}:]+)(:[^}]+)?\}")


def _concrete(path: str) -> str:
    return _PARAM.sub(lambda m: str(uuid.uuid4()) if m.group(1).endswith("id") else "x", path)


def protected_routes(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    for route in iter_api_routes(app):
        for method in sorted(route.methods or ()):
            if method == "HEAD" or is_public(method, route.path):
                continue
            yield method, route.path, route


def _required_permission(route: APIRoute) -> str | None:
    def walk(dependant: object) -> str | None:
        for dep in getattr(dependant, "dependencies", []):
            found = getattr(dep.call, PERMISSION_ATTRIBUTE, None)
            if found:
                return str(found)
            nested = walk(dep)
            if nested:
                return nested
        return None

    return walk(route.dependant)


async def _send(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.request(
        method,
        _concrete(path),
        headers={**headers, "content-type": "application/json"},
        content=b"{}" if method in ("POST", "PUT", "PATCH") else None,
    )


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], database_url: str) -> Settings:
    """Every route is walked with nine kinds of credentials from one address: far past the
    per-address budget, which is tested in tests/security/test_rate_limits.py."""
    return settings_factory(
        database_url=database_url,
        rate_limit_management="100000/minute",
        rate_limit_default="100000/minute",
        rate_limit_scoring_per_key="100000/minute",
    )


async def test_every_protected_route_refuses_missing_and_bad_credentials(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    owner = await make_member()
    tokens = await login(client, owner)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    key = derive_key(app.state.settings.token_signing_key.get_secret_value(), "assay jwt v1")
    now = int(time.time())
    expired = jwt.encode({**claims, "exp": now - 1, "iat": now - 60, "nbf": now - 60}, key)
    other_key = jwt.encode(claims, b"another-key-" * 3)
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    alg_none = f"{header}.{body}."
    created = await client.post(
        "/v1/org/api-keys",
        json={"name": "soon revoked", "scopes": ["members:read"]},
        headers=bearer(tokens["access_token"]),
    )
    revoked_key = created.json()["key"]
    KNOWN_SECRETS.add(revoked_key)
    await client.delete(
        f"/v1/org/api-keys/{created.json()['id']}", headers=bearer(tokens["access_token"])
    )
    attempts = {
        "none": {},
        "expired": bearer(expired),
        "other-key": bearer(other_key),
        "alg-none": bearer(alg_none),
        "refresh-as-access": bearer(tokens["refresh_token"]),
        "revoked-api-key": {"x-api-key": revoked_key},
        "revoked-api-key-as-bearer": bearer(revoked_key),
        "basic-auth": {"authorization": "Basic dXNlcjpwYXNz"},
    }
    routes = list(protected_routes(app))
    assert len(routes) > 20
    failures = []
    for method, path, _ in routes:
        for name, headers in attempts.items():
            response = await _send(client, method, path, headers)
            if response.status_code != 401:
                failures.append((method, path, name, response.status_code))
            assert response.headers["content-type"] == "application/problem+json"
    assert failures == []


async def test_every_permissioned_route_answers_403_without_the_permission(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    owner = await make_member()
    async with app.state.database.sessionmaker() as db:
        db.add(CustomRole(org_id=owner.org_id, name="nothing", permissions=[]))
        await db.commit()
    powerless = await make_member(role="nothing", org_slug=owner.org_slug)
    token = (await login(client, powerless))["access_token"]
    checked = 0
    for method, path, route in protected_routes(app):
        permission = _required_permission(route)
        if permission is None and not path.startswith("/v1/admin"):
            continue
        response = await _send(client, method, path, bearer(token))
        assert response.status_code == 403, (method, path, response.text)
        checked += 1
    assert checked > 10


async def test_api_keys_get_exactly_what_they_hold_on_every_route(
    app: FastAPI, client: httpx.AsyncClient, make_member: MakeMember
) -> None:
    """A least-privilege pass with API keys: each route refuses a key lacking its
    permission (holding every other one), and admits a key holding exactly it."""
    owner = await make_member()
    token = (await login(client, owner))["access_token"]
    keys: dict[frozenset[str], str] = {}

    async def key_with(scopes: frozenset[str]) -> str:
        if scopes not in keys:
            made = await client.post(
                "/v1/org/api-keys",
                json={"name": "least privilege", "scopes": sorted(scopes)},
                headers=bearer(token),
            )
            assert made.status_code == 201, made.text
            keys[scopes] = made.json()["key"]
            KNOWN_SECRETS.add(keys[scopes])
        return keys[scopes]

    checked = 0
    for method, path, route in protected_routes(app):
        permission = _required_permission(route)
        if permission is None:
            continue
        lacking = await key_with(frozenset(ALL_PERMISSIONS) - {permission})
        refused = await _send(client, method, path, {"x-api-key": lacking})
        assert refused.status_code == 403, (method, path, refused.text)
        holding = await key_with(frozenset({permission}))
        # Past the permission, the route's own checks answer (404 for the made-up ids,
        # 422 for the empty body, ...), never 401 or 403.
        admitted = await _send(client, method, path, {"x-api-key": holding})
        assert admitted.status_code not in (401, 403), (method, path, admitted.text)
        checked += 1
    assert checked > 20


def test_a_route_without_a_principal_cannot_even_start(
    settings_factory: type[Settings],
) -> None:
    app = create_app(settings_factory())  # type: ignore[operator]

    @app.get("/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"leak": "yes"}

    with pytest.raises(UnprotectedRouteError, match="/v1/forgotten"):
        assert_deny_by_default(app)


def test_public_list_is_small_and_explicit() -> None:
    assert len(PUBLIC_ROUTES) <= 20
    assert all(
        path.startswith(("/livez", "/readyz", "/openapi", "/docs", "/v1/auth/", "/v2/health"))
        for _, path in PUBLIC_ROUTES
    )


# Fields that would let a caller pick their tenant, role or privileges.
PRIVILEGED_FIELDS = (
    "org_id",
    "organisation_id",
    "role",
    "is_platform_admin",
    "is_admin",
    "permissions",
    "scopes",
    "user_id",
    "created_by",
    "status",
    "scope",
    "id",
)
# Bodies that are not strict JSON models, and why that is safe. Everything else must
# refuse unknown fields.
_OIP_SAMPLE = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
LENIENT_BODIES: dict[tuple[str, str], tuple[str, dict[str, object] | None]] = {
    ("POST", "/v2/models/{name}/infer"): (
        "Open Inference Protocol: unknown fields are ignored by the protocol's rules and "
        "never reach a model or a row",
        _OIP_SAMPLE,
    ),
    ("POST", "/v2/models/{name}/versions/{version}/infer"): ("as above", _OIP_SAMPLE),
    ("POST", "/v1/models/{name}/versions"): (
        "multipart form: parts are read by name, others never read",
        None,
    ),
}


def _body_model(route: APIRoute) -> type[BaseModel] | None:
    if route.body_field is None:
        return None
    annotation = route.body_field.field_info.annotation
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _accepted_names(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        names.update({name, field.alias or name})
    return names


async def test_no_body_anywhere_accepts_a_privileged_field_it_does_not_declare(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    """Structural: every route with a body, including routes added later."""
    app = create_app(
        settings_factory(
            database_url=database_url,
            signup_enabled=True,
            rate_limit_management="100000/minute",
            rate_limit_default="100000/minute",
            rate_limit_scoring_per_key="100000/minute",
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            from tests.support.identity import new_member, platform_admin_token

            async def make(**options: object) -> object:
                return await new_member(app, **options)  # type: ignore[arg-type]

            # A platform administrator owning an organisation: every permission.
            token = await platform_admin_token(client, make)  # type: ignore[arg-type]
            checked = 0
            for route in iter_api_routes(app):
                for method in sorted(route.methods or ()):
                    if route.body_field is None:
                        continue
                    model = _body_model(route)
                    if (method, route.path) in LENIENT_BODIES:
                        _, sample = LENIENT_BODIES[(method, route.path)]
                        if model is not None and sample is not None:
                            # Ignored, really: nothing privileged survives parsing.
                            smuggled = {**dict.fromkeys(PRIVILEGED_FIELDS, "x"), **sample}
                            kept = set(model.model_validate(smuggled).model_dump())
                            assert not (kept & set(PRIVILEGED_FIELDS)) - _accepted_names(model)
                        continue
                    assert model is not None, f"{method} {route.path}: not a JSON model body"
                    assert model.model_config.get("extra") == "forbid", (
                        f"{model.__name__} ({method} {route.path}) must forbid unknown fields"
                    )
                    for field in PRIVILEGED_FIELDS:
                        if field in _accepted_names(model):
                            continue  # declared, so checked by its own rules
                        response = await client.request(
                            method,
                            _concrete(route.path),
                            json={field: "x"},
                            headers=bearer(token),
                        )
                        assert response.status_code == 422, (method, route.path, field)
                        named = {(e["field"], e["code"]) for e in response.json().get("errors", [])}
                        assert (f"body.{field}", "extra_forbidden") in named, (
                            method,
                            route.path,
                            field,
                        )
                        checked += 1
    assert checked > 200
