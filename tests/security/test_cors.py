"""CORS only from an exact allow-list (SECURITY.md item 18)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from assay.core.config_check import production_problems
from assay.settings import Settings

from .conftest import ClientFactory

pytestmark = pytest.mark.usefixtures("steady_rate_window")

LISTED = "https://console.example.org"
STRANGER = "https://evil.example.net"


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def preflight(origin: str, method: str = "POST", headers: str | None = None) -> dict[str, str]:
    values = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        values["access-control-request-headers"] = headers
    return values


async def test_by_default_no_origin_gets_cors_headers(make_client: ClientFactory) -> None:
    async with make_client() as http:
        simple = await http.get("/probe/ok", headers={"origin": STRANGER})
        answered = await http.options("/probe/json", headers=preflight(STRANGER))
    assert cors_headers(simple) == {}
    assert cors_headers(answered) == {}
    assert answered.status_code != 204


async def test_a_listed_origin_gets_its_own_origin_and_credentials(
    make_client: ClientFactory,
) -> None:
    async with make_client(cors_origins=[LISTED + "/"]) as http:
        response = await http.get("/probe/ok", headers={"origin": LISTED})
    assert response.headers["access-control-allow-origin"] == LISTED
    assert response.headers["access-control-allow-credentials"] == "true"
    exposed = response.headers["access-control-expose-headers"]
    for name in ("ratelimit-remaining", "retry-after", "x-request-id"):
        assert name in exposed
    assert "Origin" in response.headers["vary"]


async def test_an_unlisted_origin_gets_no_cors_header_at_all(make_client: ClientFactory) -> None:
    async with make_client(cors_origins=[LISTED]) as http:
        simple = await http.get("/probe/ok", headers={"origin": STRANGER})
        look_alike = await http.get("/probe/ok", headers={"origin": LISTED + ".evil.net"})
        refused = await http.options("/probe/json", headers=preflight(STRANGER))
    assert cors_headers(simple) == {}
    assert cors_headers(look_alike) == {}
    assert cors_headers(refused) == {}
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:assay:problem:cors-refused"
    # Still a response of ours: the security headers are there.
    assert refused.headers["x-content-type-options"] == "nosniff"


async def test_preflight_from_a_listed_origin_is_answered_and_cacheable(
    make_client: ClientFactory,
) -> None:
    async with make_client(cors_origins=[LISTED], cors_max_age_seconds=900) as http:
        answered = await http.options(
            "/probe/json", headers=preflight(LISTED, "POST", "Content-Type, Authorization")
        )
    assert answered.status_code == 204
    assert answered.headers["access-control-allow-origin"] == LISTED
    assert answered.headers["access-control-allow-credentials"] == "true"
    assert answered.headers["access-control-max-age"] == "900"
    assert "POST" in answered.headers["access-control-allow-methods"]
    assert "authorization" in answered.headers["access-control-allow-headers"]
    assert "strict-transport-security" not in answered.headers  # plain http here
    assert answered.headers["content-security-policy"].startswith("default-src 'none'")


async def test_preflight_admits_the_request_signing_headers(make_client: ClientFactory) -> None:
    async with make_client(cors_origins=[LISTED]) as http:
        answered = await http.options(
            "/probe/json",
            headers=preflight(
                LISTED,
                "POST",
                "Content-Type, X-API-Key, Content-Digest, Signature-Input, Signature",
            ),
        )
    assert answered.status_code == 204, answered.text


async def test_preflight_for_a_method_or_header_we_do_not_take_is_refused(
    make_client: ClientFactory,
) -> None:
    async with make_client(cors_origins=[LISTED]) as http:
        method = await http.options("/probe/json", headers=preflight(LISTED, "TRACE"))
        header = await http.options("/probe/json", headers=preflight(LISTED, "POST", "x-evil"))
    assert (method.status_code, header.status_code) == (403, 403)
    assert cors_headers(method) == {}
    assert cors_headers(header) == {}


async def test_wildcard_allows_reading_without_credentials(make_client: ClientFactory) -> None:
    async with make_client(cors_origins=["*"]) as http:
        response = await http.get("/probe/ok", headers={"origin": STRANGER})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


async def test_cors_headers_are_on_errors_and_rate_limit_refusals(
    make_client: ClientFactory,
) -> None:
    async with make_client(cors_origins=[LISTED], rate_limit_default="1/minute") as http:
        first = await http.get("/nowhere", headers={"origin": LISTED})
        limited = await http.get("/probe/ok", headers={"origin": LISTED})
    assert first.status_code == 404
    assert limited.status_code == 429
    for response in (first, limited):
        assert response.headers["access-control-allow-origin"] == LISTED


def test_production_refuses_a_wildcard_origin(tmp_path: Path) -> None:
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        public_url="https://assay.example.org",
        cors_origins=["*"],
    )
    assert any("ASSAY_CORS_ORIGINS" in problem for problem in production_problems(settings))
