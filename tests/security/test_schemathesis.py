"""The app against its own OpenAPI document (schemathesis, in process over ASGI).

Every operation is called with generated inputs, valid and invalid, and real
credentials: an owner's token for the routes of signed-in people, an API key with every
permission for the rest, a platform admin's token for /v1/admin; a rules model is
deployed, so model routes can answer 200. Each response must not be a 5xx, must use a
documented status code and match its documented schema, and invalid input must be
refused. Run it alone with `pytest tests/security/test_schemathesis.py`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from assay.accounts import service as accounts
from assay.app import create_app
from assay.audit.service import CLI
from assay.core.permissions import ALL_PERMISSIONS
from assay.core.principal import PLATFORM
from assay.orgs import service as orgs
from assay.settings import Settings
from tests.support.identity import enrol_totp, next_code, strong_password
from tests.support.models import register_rules_model
from tests.support.session_checks import import_time_tmp_dir

from ..conftest import KNOWN_SECRETS, new_secret

_DATA_DIR = import_time_tmp_dir("schemathesis")


def _settings() -> Settings:
    return Settings(
        env="test",
        data_dir=_DATA_DIR / "data",
        database_url=f"sqlite:///{_DATA_DIR / 'assay.db'}",
        metrics_port=0,
        token_signing_key=new_secret(),
        session_secret=new_secret(),
        encryption_key=new_secret(),
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        # Generated requests arrive far faster than any client's; limits have own tests.
        rate_limit_default="1000000/minute",
        rate_limit_auth_per_address="1000000/minute",
        rate_limit_auth_per_account="1000000/minute",
        rate_limit_management="1000000/minute",
        rate_limit_scoring_per_key="1000000/minute",
        rate_limit_scoring_per_org="1000000/minute",
    )


# Logging out ends the token's session; each logout case gets a token of its own.
LOGOUT_TOKENS = 200


async def _sign_in(
    http: httpx.AsyncClient, email: str, password: str, org: str | None = None
) -> str:
    response = await http.post(
        "/v1/auth/login", json={"email": email, "password": password, "org": org}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    KNOWN_SECRETS.update({token, response.json()["refresh_token"]})
    return token


async def _credentials(app: FastAPI) -> dict[str, Any]:
    """An owner's tokens, an API key with every permission, a platform admin's token (MFA
    done) and a deployed rules model.

    The owner belongs to two organisations: the tokens are for one, the API key and the
    model for the other. Generated PATCH /v1/org requests (sent with the key) may then
    require MFA or change policies there without cutting the owner's token off."""
    identity = app.state.identity
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        password = strong_password()
        admin_password = strong_password()
        async with app.state.database.sessionmaker() as db:
            owner = await accounts.create_user(
                db, identity, email="owner@example.org", password=password
            )
            people = await orgs.create_organisation(db, CLI, PLATFORM, name="People", slug=None)
            keys = await orgs.create_organisation(db, CLI, PLATFORM, name="Keys", slug=None)
            for org in (people, keys):
                await orgs.add_member(db, CLI, PLATFORM, org.id, owner, "owner")
            await accounts.create_user(
                db,
                identity,
                email="admin@example.org",
                password=admin_password,
                is_platform_admin=True,
            )
            await db.commit()
            people_slug, keys_slug = people.slug, keys.slug
        owner_token = await _sign_in(http, "owner@example.org", password, people_slug)
        keys_token = await _sign_in(http, "owner@example.org", password, keys_slug)
        key = await http.post(
            "/v1/org/api-keys",
            json={"name": "fuzz", "scopes": sorted(ALL_PERMISSIONS)},
            headers={"authorization": f"Bearer {keys_token}"},
        )
        assert key.status_code == 201, key.text
        api_key = key.json()["key"]
        KNOWN_SECRETS.add(api_key)
        deployed = await register_rules_model(http, keys_token, name=MODEL)
        assert deployed.status_code == 201, deployed.text
        logout_tokens = [
            await _sign_in(http, "owner@example.org", password, people_slug)
            for _ in range(LOGOUT_TOKENS)
        ]
        enrolment_token = await _sign_in(http, "admin@example.org", admin_password)
        secret, _codes = await enrol_totp(http, enrolment_token)
        relogin = await http.post(
            "/v1/auth/login", json={"email": "admin@example.org", "password": admin_password}
        )
        mfa = await http.post(
            "/v1/auth/mfa",
            json={"challenge": relogin.json()["challenge"], "code": next_code(secret)},
        )
        assert mfa.status_code == 200, mfa.text
        admin_token = mfa.json()["access_token"]
        KNOWN_SECRETS.update({admin_token, mfa.json()["refresh_token"]})
    return {
        "api_key": api_key,
        "owner_token": owner_token,
        "admin_token": admin_token,
        "logout_tokens": logout_tokens,
    }


MODEL = "fuzzed"
VALID_RECORD = {"amount": 1500, "country": "GB"}
VALID_INFERENCE = {
    "inputs": [
        {"name": "amount", "datatype": "FP64", "shape": [1], "data": [1500]},
        {"name": "country", "datatype": "BYTES", "shape": [1], "data": ["GB"]},
    ]
}

# Credentials are made by a first app, in a loop of its own, on the same database and
# secrets; schemathesis starts the app under test in its own event-loop thread.
SETTINGS = _settings()
APP = create_app(SETTINGS)
_CREDENTIALS: dict[str, Any] = {}


def credentials() -> dict[str, Any]:
    """Made when the first case runs, not when tests are collected: access tokens live
    15 minutes, and in a full run this module starts well after collection."""
    if not _CREDENTIALS:
        _CREDENTIALS.update(asyncio.run(_credentials(create_app(SETTINGS))))
    return _CREDENTIALS


# Refusing input outside the schema may also be a 413: a form part over the 1 MiB part
# limit is a body too large (docs/errors.md), not a validation failure.
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [*REFUSALS, "5XX"],
            }
        }
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    # Input outside the documented schema must be refused (4xx), never accepted.
    checks.negative_data_rejection,
]
# Which cases reached the route's success path, per operation (for the coverage test).
SUCCEEDED: dict[str, int] = {}
# Every operation this process generated cases for (pytest-xdist splits them).
RAN: set[str] = set()
# Operations whose generated cases must get through to a 2xx at least once: the
# credentials and the deployed model let requests through, not only into refusals.
MUST_SUCCEED = frozenset(
    {
        "GET /v1/me",
        "GET /v1/models/{name}",
        "POST /v1/models/{name}/predict",
        "POST /v2/models/{name}/infer",
        "POST /v1/org/api-keys",
        "GET /v1/admin/orgs",
        "GET /v1/org/members",
    }
)
# Over the whole run (all pytest-xdist workers added up by tests/support/session_checks.py),
# most operations' success paths are reached (the rest answer only refusals by design:
# SSO without a provider, tokens nobody was mailed, ...).
MIN_SUCCEEDED_WHEN_ALL_RAN = 30
_counter = itertools.count()


def _headers_for(case: Any) -> dict[str, str]:
    path: str = case.path
    found = credentials()
    if path.startswith("/v1/admin"):
        return {"authorization": f"Bearer {found['admin_token']}"}
    if path == "/v1/auth/logout":
        tokens: list[str] = found["logout_tokens"]
        if not tokens:
            # Never the owner's own token: logging it out would turn every later case
            # into a 401.
            pytest.fail("more logout cases than spare tokens; raise LOGOUT_TOKENS")
        return {"authorization": f"Bearer {tokens.pop()}"}
    # Routes for signed-in people (API keys are refused there by design).
    if path.startswith(("/v1/me", "/v1/auth", "/v1/org/api-keys")):
        return {"authorization": f"Bearer {found['owner_token']}"}
    return {"x-api-key": found["api_key"]}


def _aim_at_the_deployed_model(case: Any) -> None:
    """Positive cases of model routes address the deployed model (random names would
    only ever reach the 404), and every other predict or infer case sends a record the
    model accepts, so the 200 answers are checked against their schema too. The model
    is never deleted: DELETE keeps its generated name."""
    if case.method.upper() == "DELETE" or case.meta is None:
        return
    if case.meta.generation.mode.is_negative:
        return
    parameters = case.path_parameters or {}
    if "name" in parameters and case.path.startswith(("/v1/models", "/v2/models")):
        parameters["name"] = MODEL
        if "version" in parameters and case.path.startswith("/v2/"):
            parameters["version"] = "1"
        if next(_counter) % 2 == 0:
            if case.path.endswith("/predict"):
                case.body = {"record": dict(VALID_RECORD)}
            elif case.path.endswith("/infer"):
                case.body = json.loads(json.dumps(VALID_INFERENCE))


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_conforms_to_the_documented_api(case: Any) -> None:
    _aim_at_the_deployed_model(case)
    # No 5xx; every response documented (status, content type, headers, body schema);
    # input outside the schema refused.
    response = case.call_and_validate(headers=_headers_for(case), checks=CHECKS)
    # Negative cases may use a method the operation does not have: count the operation.
    RAN.add(f"{case.operation.method.upper()} {case.operation.path}")
    if 200 <= response.status_code < 300:
        key = f"{case.method.upper()} {case.operation.path}"
        SUCCEEDED[key] = SUCCEEDED.get(key, 0) + 1


@pytest.fixture(autouse=True)
def _reached_its_success_path(request: pytest.FixtureRequest) -> Iterator[None]:
    """After all of one operation's generated cases (one test item per operation).
    Checked per item, it holds however pytest-xdist splits the module's items."""
    yield
    label = getattr(request.node, "operation_label", None)
    if label in MUST_SUCCEED:
        assert SUCCEEDED.get(label, 0) > 0, (label, sorted(SUCCEEDED))
