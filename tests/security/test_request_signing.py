"""Request signing for API keys marked "signing required" (ADR 0004), black-box: keys are
created through the API and requests signed with the shipped client helper."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from assay.app import create_app
from assay.auth import request_signing
from assay.client import SignedRequestAuth, sign_request
from assay.client.signing import api_key_id, decode_signing_secret
from assay.core.cache import InProcessCache
from assay.settings import Settings
from tests.support.identity import PrivateRedis, bearer, login, new_member, private_redis_server

from ..conftest import KNOWN_SECRETS


@pytest.fixture(params=["memory", "redis"])
def settings(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings], database_url: str
) -> Settings:
    """Each test runs with the in-process cache and with Redis remembering nonces."""
    if request.param == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        return settings_factory(database_url=database_url, redis_url=redis_url)
    return settings_factory(database_url=database_url)


async def _create_key(
    client: httpx.AsyncClient, token: str, *, signing_required: bool
) -> dict[str, Any]:
    response = await client.post(
        "/v1/org/api-keys",
        json={
            "name": "signed",
            "scopes": ["keys:manage", "members:read", "models:write"],
            "signing_required": signing_required,
        },
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    KNOWN_SECRETS.add(body["key"])
    if body["signing_secret"]:
        KNOWN_SECRETS.add(body["signing_secret"])
    return body


@pytest.fixture
async def signed_key(client: httpx.AsyncClient, owner_token: str) -> dict[str, Any]:
    return await _create_key(client, owner_token, signing_required=True)


def _auth(key: dict[str, Any]) -> SignedRequestAuth:
    return SignedRequestAuth(api_key=key["key"], signing_secret=key["signing_secret"])


def _signed(key: dict[str, Any], request: httpx.Request, **kwargs: Any) -> httpx.Request:
    """`request` with the key's header and a signature, as the helper would send it."""
    request.headers["x-api-key"] = key["key"]
    sign_request(
        request,
        key_id=api_key_id(key["key"]),
        signing_secret=decode_signing_secret(key["signing_secret"]),
        **kwargs,
    )
    return request


def _reason(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    reason: str = response.json()["reason"]
    assert reason in response.json()["detail"]
    return reason


async def test_signed_requests_pass_and_the_route_still_reads_the_body(
    client: httpx.AsyncClient, signed_key: dict[str, Any]
) -> None:
    auth = _auth(signed_key)
    listed = await client.get("/v1/org/members", params={"limit": "5"}, auth=auth)
    assert listed.status_code == 200, listed.text
    created = await client.post(
        "/v1/models",
        json={"name": "made-by-a-signed-key", "kind": "rules"},
        auth=auth,
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "made-by-a-signed-key"


async def test_the_signing_secret_is_shown_once_and_only_for_signing_keys(
    client: httpx.AsyncClient, owner_token: str, signed_key: dict[str, Any]
) -> None:
    plain = await _create_key(client, owner_token, signing_required=False)
    assert plain["signing_secret"] is None
    assert len(decode_signing_secret(signed_key["signing_secret"])) == 32
    listed = await client.get("/v1/org/api-keys", headers=bearer(owner_token))
    assert signed_key["signing_secret"] not in listed.text


async def test_the_sync_auth_flow_signs_too(
    client: httpx.AsyncClient, signed_key: dict[str, Any]
) -> None:
    request = httpx.Request("GET", "http://testserver/v1/org/members")
    signed = next(_auth(signed_key).sync_auth_flow(request))
    assert (await client.send(signed)).status_code == 200


async def test_unsigned_request_is_refused(
    client: httpx.AsyncClient, signed_key: dict[str, Any]
) -> None:
    response = await client.get("/v1/org/members", headers={"x-api-key": signed_key["key"]})
    assert _reason(response) == "unsigned"


async def test_replayed_request_is_refused(
    client: httpx.AsyncClient, signed_key: dict[str, Any]
) -> None:
    request = _signed(signed_key, client.build_request("GET", "/v1/org/members"))
    assert (await client.send(request)).status_code == 200
    replay = client.build_request("GET", "/v1/org/members", headers=request.headers)
    assert _reason(await client.send(replay)) == "replayed"


@pytest.fixture
def server_now(monkeypatch: pytest.MonkeyPatch) -> int:
    """Hold the server's clock still, so a window edge is not raced against the wall clock
    (a slow run once let a second pass between signing and checking, and 301 became 300)."""
    now = int(time.time())
    monkeypatch.setattr(request_signing, "clock", lambda: float(now))
    return now


@pytest.mark.parametrize("offset", [-301, 301])
async def test_skewed_timestamp_is_refused(
    client: httpx.AsyncClient, signed_key: dict[str, Any], offset: int, server_now: int
) -> None:
    request = client.build_request("GET", "/v1/org/members")
    _signed(signed_key, request, created=server_now + offset)
    assert _reason(await client.send(request)) == "skewed"


@pytest.mark.parametrize("offset", [-300, 300])
async def test_timestamp_at_the_window_edge_is_accepted(
    client: httpx.AsyncClient, signed_key: dict[str, Any], offset: int, server_now: int
) -> None:
    request = client.build_request("GET", "/v1/org/members")
    _signed(signed_key, request, created=server_now + offset)
    assert (await client.send(request)).status_code == 200


async def test_tampered_body_is_refused(
    client: httpx.AsyncClient, signed_key: dict[str, Any]
) -> None:
    original = _signed(
        signed_key,
        client.build_request(
            "POST", "/v1/org/api-keys", json={"name": "ok", "scopes": ["members:read"]}
        ),
    )
    tampered = client.build_request(
        "POST",
        "/v1/org/api-keys",
        json={"name": "ok", "scopes": ["keys:manage"]},
        headers={k: v for k, v in original.headers.items() if k != "content-length"},
    )
    assert _reason(await client.send(tampered)) == "digest-mismatch"


async def test_tampered_body_with_a_matching_digest_is_refused(
    client: httpx.AsyncClient, signed_key: dict[str, Any]
) -> None:
    """An attacker who recomputes Content-Digest still cannot forge the signature."""
    from assay.client.signing import content_digest

    original = _signed(
        signed_key,
        client.build_request(
            "POST", "/v1/org/api-keys", json={"name": "ok", "scopes": ["members:read"]}
        ),
    )
    tampered = client.build_request(
        "POST",
        "/v1/org/api-keys",
        json={"name": "ok", "scopes": ["keys:manage"]},
        headers={k: v for k, v in original.headers.items() if k != "content-length"},
    )
    tampered.headers["content-digest"] = content_digest(tampered.read())
    assert _reason(await client.send(tampered)) == "bad-signature"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/org/members"),  # path changed
        ("GET", "/v1/org/api-keys?limit=1"),  # query added
        ("POST", "/v1/org/api-keys"),  # method changed
    ],
)
async def test_tampered_path_query_or_method_is_refused(
    client: httpx.AsyncClient, signed_key: dict[str, Any], method: str, url: str
) -> None:
    original = _signed(signed_key, client.build_request("GET", "/v1/org/api-keys"))
    tampered = client.build_request(method, url, headers=original.headers)
    assert _reason(await client.send(tampered)) == "bad-signature"


async def test_the_content_type_is_covered_and_cannot_be_changed(
    client: httpx.AsyncClient, signed_key: dict[str, Any]
) -> None:
    original = _signed(
        signed_key,
        client.build_request("POST", "/v1/models", json={"name": "typed", "kind": "rules"}),
    )
    assert '"content-type"' in original.headers["signature-input"]
    retyped = client.build_request(
        "POST", "/v1/models", content=original.read(), headers=original.headers
    )
    retyped.headers["content-type"] = "text/plain"
    assert _reason(await client.send(retyped)) == "bad-signature"
    # A request without a body has no Content-Type to cover.
    bodiless = _signed(signed_key, client.build_request("GET", "/v1/org/members"))
    assert "content-type" not in bodiless.headers["signature-input"]
    assert (await client.send(original)).status_code == 201


async def test_signature_by_another_secret_is_refused(
    client: httpx.AsyncClient, owner_token: str, signed_key: dict[str, Any]
) -> None:
    other = await _create_key(client, owner_token, signing_required=True)
    request = client.build_request("GET", "/v1/org/members")
    request.headers["x-api-key"] = signed_key["key"]
    sign_request(
        request,
        key_id=api_key_id(signed_key["key"]),
        signing_secret=decode_signing_secret(other["signing_secret"]),
    )
    assert _reason(await client.send(request)) == "bad-signature"


async def test_signature_must_cover_the_body_digest(
    client: httpx.AsyncClient, signed_key: dict[str, Any]
) -> None:
    request = _signed(signed_key, client.build_request("GET", "/v1/org/members"))
    request.headers["signature-input"] = request.headers["signature-input"].replace(
        ' "content-digest"', ""
    )
    assert _reason(await client.send(request)) == "incomplete"


async def test_garbled_signature_headers_are_refused(
    client: httpx.AsyncClient, signed_key: dict[str, Any]
) -> None:
    request = _signed(signed_key, client.build_request("GET", "/v1/org/members"))
    request.headers["signature"] = "sig1=not base64"
    assert _reason(await client.send(request)) == "malformed"


async def test_key_without_signing_required_needs_no_signature(
    client: httpx.AsyncClient, owner_token: str
) -> None:
    plain = await _create_key(client, owner_token, signing_required=False)
    response = await client.get("/v1/org/members", headers={"x-api-key": plain["key"]})
    assert response.status_code == 200


# --- the nonce store down -------------------------------------------------------------------


def _nonce_errors() -> float:
    labels = {"operation": "nonce"}
    return REGISTRY.get_sample_value("assay_auth_cache_errors_total", labels) or 0.0


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:assay:problem:dependency-unavailable"
    assert "replay" in response.json()["detail"]
    assert response.headers["retry-after"] == "1"


@pytest.fixture
def private_redis(free_port: int, tmp_path: Any) -> Iterator[PrivateRedis]:
    with private_redis_server(free_port, tmp_path) as server:
        yield server


async def test_with_redis_stopped_a_signed_request_is_refused_with_a_503(
    settings_factory: Callable[..., Settings], database_url: str, private_redis: PrivateRedis
) -> None:
    """Without the nonce store a replay cannot be recognised: fail closed, retryably, while
    the key's unsigned-key checks (from the database) still work."""
    settings = settings_factory(
        database_url=database_url,
        redis_url=private_redis.url,
        rate_limit_fail_open_classes=["default", "management", "scoring"],
        rate_limit_redis_timeout_seconds=0.5,
        health_check_timeout_seconds=0.5,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            owner = await new_member(app)
            key = await _create_key(
                client, (await login(client, owner))["access_token"], signing_required=True
            )
            assert (await client.get("/v1/org/members", auth=_auth(key))).status_code == 200
            before = _nonce_errors()
            private_redis.stop()
            _unavailable(await client.get("/v1/org/members", auth=_auth(key)))
            # A bad signature is still a 401 (checked before the nonce is claimed).
            unsigned = await client.get("/v1/org/members", headers={"x-api-key": key["key"]})
            assert _reason(unsigned) == "unsigned"
    assert _nonce_errors() == before + 1


class _NonceStoreDown(InProcessCache):
    async def set_if_absent(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        raise ConnectionError("nonce store unreachable")


async def test_with_an_in_process_store_that_raises_a_signed_request_is_a_503(
    client: httpx.AsyncClient, signed_key: dict[str, Any], app: Any
) -> None:
    identity = app.state.identity
    healthy = identity.cache
    identity.cache = _NonceStoreDown(10)
    try:
        _unavailable(await client.get("/v1/org/members", auth=_auth(signed_key)))
    finally:
        identity.cache = healthy
    assert (await client.get("/v1/org/members", auth=_auth(signed_key))).status_code == 200
