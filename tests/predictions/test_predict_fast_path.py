"""The predict fast path answers exactly as the framework's route does, only cheaper.

Every request here is sent twice: as it is (the fast path takes the well-formed ones)
and with an extra, ignored query parameter, which the fast path never takes — so the
framework's route answers it. The two answers must match.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, Request
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Receive, Scope, Send

from assay.app import create_app
from assay.core.metrics import HTTP_REQUESTS
from assay.predictions.fast_path import (
    PREDICT_ROUTE_PATH,
    FastPathUnavailable,
    PredictFastPath,
    _query,
    plan_predict_route,
)
from assay.settings import Settings
from tests.support.identity import MakeMember, Member, login, new_member
from tests.support.models import auth, register_rules_model

from ..conftest import KNOWN_SECRETS

GOOD = {"amount": 2500, "country": "GB"}
IGNORED = "zz_framework=1"
# Differ between any two requests by design.
VOLATILE_HEADERS = {"x-request-id", "ratelimit-remaining", "ratelimit-reset", "content-length"}


def _fast_path_of(app: FastAPI) -> PredictFastPath:
    layer: Any = app.middleware_stack
    while layer is not None:
        if isinstance(layer, PredictFastPath):
            return layer
        layer = getattr(layer, "app", None)
    raise AssertionError("no PredictFastPath in the middleware stack")


class _Spy:
    """Stands between the fast path and the framework, noting what reaches the latter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(f"{scope['method']} {scope['path']}?{scope['query_string'].decode()}")
        await self.app(scope, receive, send)


async def _key(client: httpx.AsyncClient, token: str, scopes: list[str]) -> str:
    created = await client.post(
        "/v1/org/api-keys", json={"name": "fast-path", "scopes": scopes}, headers=auth(token)
    )
    assert created.status_code == 201, created.text
    key: str = created.json()["key"]
    KNOWN_SECRETS.add(key)
    return key


def _comparable(response: httpx.Response) -> tuple[int, str | None, Any, set[str]]:
    body: Any = response.content
    if response.headers.get("content-type", "").endswith("json"):
        body = response.json()
        if isinstance(body, dict):
            body.pop("request_id", None)
    names = {name for name in response.headers if name not in VOLATILE_HEADERS}
    return response.status_code, response.headers.get("content-type"), body, names


def _with_ignored(url: str) -> str:
    return f"{url}&{IGNORED}" if "?" in url else f"{url}?{IGNORED}"


@pytest.fixture
async def scorer(client: httpx.AsyncClient, make_member: MakeMember) -> tuple[Member, str]:
    owner = await make_member(role="owner")
    token = (await login(client, owner))["access_token"]
    registered = await register_rules_model(client, token)
    assert registered.status_code == 201, registered.text
    return owner, token


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


PREDICT = "/v1/models/fraud-rules/predict"
UNKNOWN_KEY = "assay_sk_" + "x" * 40

# name -> (url, credentials, body). Credentials: "key" (may predict), "weak" (may not),
# "none", "unknown" (a key that does not exist), "basic" (the key in a Basic header).
CASES: dict[str, tuple[str, str, bytes]] = {
    "one record": (PREDICT, "key", _json({"record": GOOD})),
    "a batch with a bad row": (
        PREDICT,
        "key",
        _json({"records": [GOOD, {"amount": -1, "country": "FR"}, "not an object"]}),
    ),
    "a strict batch with a bad row": (
        f"{PREDICT}?strict=true",
        "key",
        _json({"records": [GOOD, {"amount": -1, "country": "GB"}]}),
    ),
    "without explanations": (f"{PREDICT}?explain=false", "key", _json({"record": GOOD})),
    "by alias": (f"{PREDICT}?alias=production", "key", _json({"record": GOOD})),
    "by version": (f"{PREDICT}?version=1&explain=0", "key", _json({"record": GOOD})),
    "an alias that does not exist": (f"{PREDICT}?alias=canary", "key", _json({"record": GOOD})),
    "a version that does not exist": (f"{PREDICT}?version=99", "key", _json({"record": GOOD})),
    "a model that does not exist": (
        "/v1/models/nothing-here/predict",
        "key",
        _json({"record": GOOD}),
    ),
    "an invalid record": (
        PREDICT,
        "key",
        _json({"record": {"amount": "lots", "country": "FR", "extra": 1}}),
    ),
    "no credentials": (PREDICT, "none", _json({"record": GOOD})),
    "an unknown key": (PREDICT, "unknown", _json({"record": GOOD})),
    "a malformed authorization header": (PREDICT, "basic", _json({"record": GOOD})),
    "a key without the predict permission": (PREDICT, "weak", _json({"record": GOOD})),
    "a body the framework must name the fault of": (
        PREDICT,
        "key",
        _json({"record": GOOD, "records": [GOOD]}),
    ),
    "a body that is not JSON": (PREDICT, "key", b"{not json"),
}


def _credentials(kind: str, key: str, weak: str) -> dict[str, str]:
    return {
        "key": {"x-api-key": key},
        "weak": {"x-api-key": weak},
        "none": {},
        "unknown": {"x-api-key": UNKNOWN_KEY},
        "basic": {"authorization": f"Basic {key}"},
    }[kind]


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_fast_path_answers_as_the_framework_route_does(
    app: FastAPI, client: httpx.AsyncClient, scorer: tuple[Member, str], case: str
) -> None:
    _, token = scorer
    key = await _key(client, token, ["predict", "models:read"])
    weak = await _key(client, token, ["models:read"])
    url, credentials, body = CASES[case]
    headers = {"content-type": "application/json", **_credentials(credentials, key, weak)}
    fast = await client.post(url, content=body, headers=headers)
    framework = await client.post(_with_ignored(url), content=body, headers=headers)
    assert fast.status_code < 500, fast.text
    assert _comparable(fast) == _comparable(framework)


async def test_well_formed_predictions_never_reach_the_framework_route(
    app: FastAPI, client: httpx.AsyncClient, scorer: tuple[Member, str]
) -> None:
    _, token = scorer
    key = await _key(client, token, ["predict"])
    headers = {"x-api-key": key}
    warm = await client.post(
        "/v1/models/fraud-rules/predict", json={"record": GOOD}, headers=headers
    )
    assert warm.status_code == 200, warm.text
    fast_path = _fast_path_of(app)
    spy = _Spy(fast_path.app)
    fast_path.app = spy

    for url in (
        "/v1/models/fraud-rules/predict",
        "/v1/models/fraud-rules/predict?alias=production&explain=false",
        "/v1/models/fraud-rules/predict?version=1&strict=1",
    ):
        answered = await client.post(url, json={"record": GOOD}, headers=headers)
        assert answered.status_code == 200, answered.text
    refused = await client.post("/v1/models/fraud-rules/predict", json={"record": GOOD})
    assert refused.status_code == 401
    assert spy.paths == []

    # What the fast path does not take goes to the framework, untouched.
    odd = await client.post(
        "/v1/models/fraud-rules/predict?explain=yes", json={"record": GOOD}, headers=headers
    )
    assert odd.status_code == 200
    text = await client.post(
        "/v1/models/fraud-rules/predict",
        content=_json({"record": GOOD}),
        headers={**headers, "content-type": "text/plain"},
    )
    # The framework's route answers it, as it always would: not JSON, so a 415.
    assert text.status_code == 415
    assert spy.paths == [
        "POST /v1/models/fraud-rules/predict?explain=yes",
        "POST /v1/models/fraud-rules/predict?",
    ]


async def test_the_fast_path_counts_and_logs_under_the_route_template(
    client: httpx.AsyncClient, scorer: tuple[Member, str]
) -> None:
    _, token = scorer
    key = await _key(client, token, ["predict"])
    counter = HTTP_REQUESTS.labels(PREDICT_ROUTE_PATH, "POST", "200")
    before = counter._value.get()
    answered = await client.post(
        "/v1/models/fraud-rules/predict", json={"record": GOOD}, headers={"x-api-key": key}
    )
    assert answered.status_code == 200
    assert counter._value.get() == before + 1


@pytest.mark.usefixtures("steady_rate_window")
async def test_the_scoring_rate_limit_still_applies(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    settings = settings_factory(database_url=database_url, rate_limit_scoring_per_key="2/minute")
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            owner = await new_member(application, role="owner")
            token = (await login(http, owner))["access_token"]
            assert (await register_rules_model(http, token)).status_code == 201
            key = await _key(http, token, ["predict"])
            statuses = []
            for _ in range(3):
                answered = await http.post(
                    "/v1/models/fraud-rules/predict",
                    json={"record": GOOD},
                    headers={"x-api-key": key},
                )
                statuses.append(answered.status_code)
            assert statuses == [200, 200, 429]
            assert "retry-after" in answered.headers
            assert answered.headers["content-type"] == "application/problem+json"


async def test_the_setting_turns_the_fast_path_off(
    settings_factory: Callable[..., Settings], tmp_path: Any
) -> None:
    settings = settings_factory(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/off.db", predict_fast_path=False
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/livez")).status_code == 200
    with pytest.raises(AssertionError, match="no PredictFastPath"):
        _fast_path_of(application)


def test_the_plan_follows_the_route_declaration(app: FastAPI) -> None:
    plan = plan_predict_route(app)
    names = [step.name for step in plan.dependencies]
    assert names == [None, "principal", "predictions", "_limit"]
    # The same dependencies, in the same order, as the framework resolves for the route
    # (read from its private per-route context: a framework upgrade that moves it fails
    # here, loudly, rather than letting the two drift apart).
    (context,) = [
        c
        for c in iter_route_contexts(app.routes)
        if getattr(c.original_route, "path", None) == PREDICT_ROUTE_PATH
    ]
    effective = context._route_context.dependant
    assert [step.call for step in plan.dependencies] == [sub.call for sub in effective.dependencies]
    principal = plan.dependencies[1]
    assert [need.call.__name__ for need in principal.needs] == ["authenticate"]


def test_a_route_it_cannot_serve_faithfully_stops_the_build() -> None:
    other = FastAPI()

    async def needs_a_header(request: Request, x_thing: str = Header()) -> str:
        del request
        return x_thing

    @other.post(PREDICT_ROUTE_PATH)
    async def predict(name: str, thing: str = Depends(needs_a_header)) -> str:
        return name + thing

    with pytest.raises(FastPathUnavailable):
        plan_predict_route(other)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", {"alias": None, "version": None, "strict": False, "explain": True}),
        (
            b"alias=prod-2&version=7&strict=1&explain=false",
            {"alias": "prod-2", "version": 7, "strict": True, "explain": False},
        ),
    ],
)
def test_simple_query_strings_are_read(raw: bytes, expected: dict[str, Any]) -> None:
    assert _query(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"alias=a%20b",
        b"alias=" + b"a" * 65,
        b"alias=",
        b"version=0",
        b"version=-1",
        b"version=01",
        b"version=99999999999",
        b"strict=yes",
        b"explain",
        b"alias=a&alias=b",
        b"other=1",
        b"&",
    ],
)
def test_anything_else_goes_to_the_framework(raw: bytes) -> None:
    assert _query(raw) is None
