"""Security headers on every response, errors included (SECURITY.md item 17)."""

from __future__ import annotations

import httpx
import pytest

from ..conftest import KNOWN_SECRETS
from .conftest import ClientFactory, add_user

pytestmark = pytest.mark.usefixtures("steady_rate_window")

# Literal values, not imported from the code under test: a change to any of them must
# show up here as a failing test and be made on purpose.
API_POLICY = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "object-src 'none'"
)
CONSOLE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "permissions-policy": (
        "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), "
        "gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), payment=(), "
        "serial=(), usb=(), xr-spatial-tracking=()"
    ),
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "x-frame-options": "DENY",
    "x-permitted-cross-domain-policies": "none",
    "content-security-policy": API_POLICY,
    "cache-control": "no-store",
}
VARIABLE = {"x-request-id", "content-length", "ratelimit-remaining", "ratelimit-reset", "date"}


def snapshot(response: httpx.Response) -> dict[str, str]:
    """Every header, with the values that change per request replaced by a marker."""
    return {
        name: ("<varies>" if name in VARIABLE else value)
        for name, value in response.headers.items()
    }


def expected(content_type: str, limit: str, **extra: str) -> dict[str, str]:
    return {
        "content-type": content_type,
        "content-length": "<varies>",
        "x-request-id": "<varies>",
        "ratelimit-limit": limit,
        "ratelimit-remaining": "<varies>",
        "ratelimit-reset": "<varies>",
        **extra,
        **COMMON,
    }


async def test_header_snapshot_of_200_401_404_422_429_and_500(
    make_client: ClientFactory,
) -> None:
    async with make_client(
        rate_limit_default="6/minute", rate_limit_auth_per_address="20/minute"
    ) as http:
        email, password = await add_user(http.app)
        login = await http.post("/v1/auth/login", json={"email": email, "password": password})
        ok = await http.get("/probe/ok")
        unauthenticated = await http.get("/v1/me")
        missing = await http.get("/nowhere")
        invalid = await http.post("/probe/json", json={"name": "x", "count": -1})
        crashed = await http.get("/probe/crash")
        for _ in range(2):
            await http.get("/probe/ok")
        limited = await http.get("/probe/ok")

    statuses = [
        r.status_code for r in (login, ok, unauthenticated, missing, invalid, crashed, limited)
    ]
    assert statuses == [200, 200, 401, 404, 422, 500, 429]
    # A token-bearing answer is never stored (RFC 6749 section 5.1). The login route is
    # charged to the "auth" class, not the default one.
    assert snapshot(login) == expected("application/json", "20")
    assert snapshot(ok) == expected("application/json", "6")
    # The 401 is identity's; whether it names the scheme is tested there.
    unauthenticated_headers = snapshot(unauthenticated)
    unauthenticated_headers.pop("www-authenticate", None)
    assert unauthenticated_headers == expected("application/problem+json", "6")
    assert snapshot(missing) == expected("application/problem+json", "6")
    assert snapshot(invalid) == expected("application/problem+json", "6")
    assert snapshot(crashed) == expected("application/problem+json", "6")
    assert snapshot(limited) == expected(
        "application/problem+json", "6", **{"retry-after": limited.headers["retry-after"]}
    )
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-remaining"] == "0"
    assert "internal detail" not in crashed.text


async def test_hsts_is_sent_over_https_only(make_client: ClientFactory) -> None:
    async with make_client(base_url="https://testserver") as https:
        response = await https.get("/livez")
        assert response.headers["strict-transport-security"] == (
            "max-age=31536000; includeSubDomains"
        )
        assert "strict-transport-security" in (await https.get("/nowhere")).headers
    async with make_client() as http:
        assert "strict-transport-security" not in (await http.get("/livez")).headers


async def test_hsts_follows_x_forwarded_proto_only_from_a_trusted_proxy(
    make_client: ClientFactory,
) -> None:
    forwarded = {"x-forwarded-proto": "https"}
    async with make_client(trusted_proxies=["10.0.0.0/8"], client=("10.1.2.3", 4000)) as proxy:
        assert "strict-transport-security" in (await proxy.get("/livez", headers=forwarded)).headers
        plain = await proxy.get("/livez", headers={"x-forwarded-proto": "https, http"})
        assert "strict-transport-security" not in plain.headers
    async with make_client(trusted_proxies=["10.0.0.0/8"], client=("192.0.2.7", 4000)) as direct:
        spoofed = await direct.get("/livez", headers=forwarded)
        assert "strict-transport-security" not in spoofed.headers


async def test_hsts_max_age_and_preload_come_from_settings(make_client: ClientFactory) -> None:
    async with make_client(
        base_url="https://testserver", hsts_max_age_seconds=63_072_000, hsts_preload=True
    ) as https:
        response = await https.get("/livez")
    assert response.headers["strict-transport-security"] == (
        "max-age=63072000; includeSubDomains; preload"
    )


@pytest.mark.parametrize(
    "credentials",
    [
        {"authorization": "Bearer not-checked-here"},
        {"x-api-key": "assay_sk_not_checked_here"},
        {"cookie": "theme=dark; assay_session=abc"},
        {"cookie": "__Host-assay_session=abc"},
        {"x-test-principal": "user-1"},
    ],
    ids=["bearer", "api-key", "session-cookie", "secure-session-cookie", "principal-in-state"],
)
async def test_authenticated_responses_are_never_stored(
    make_client: ClientFactory, credentials: dict[str, str]
) -> None:
    async with make_client() as http:
        response = await http.get("/probe/whoami", headers=credentials)
        cached = await http.get("/probe/cached", headers=credentials)
    assert response.headers["cache-control"] == "no-store"
    assert cached.headers.get_list("cache-control") == ["no-store"]


async def test_token_bearing_answers_are_never_stored(make_client: ClientFactory) -> None:
    """Sign-in, refresh and console sign-in carry no credentials in, but tokens out."""
    async with make_client() as http:
        email, password = await add_user(http.app)
        login = await http.post("/v1/auth/login", json={"email": email, "password": password})
        refresh_token = login.json()["refresh_token"]
        KNOWN_SECRETS.update({refresh_token, login.json()["access_token"]})
        refreshed = await http.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
        if refreshed.status_code == 200:
            KNOWN_SECRETS.update(
                {refreshed.json()["access_token"], refreshed.json()["refresh_token"]}
            )
        console = await http.post("/v1/auth/session", json={"email": email, "password": password})
    for response in (login, refreshed, console):
        assert response.status_code == 200, response.text
        assert response.headers.get_list("cache-control") == ["no-store"]


async def test_anonymous_responses_keep_their_own_caching(make_client: ClientFactory) -> None:
    async with make_client() as http:
        response = await http.get("/probe/cached", headers={"cookie": "theme=dark"})
    assert response.headers["cache-control"] == "max-age=60"


async def test_html_gets_the_console_policy_and_json_the_api_policy(
    make_client: ClientFactory,
) -> None:
    async with make_client() as http:
        page = await http.get("/probe/html")
        data = await http.get("/probe/ok")
    assert page.headers["content-security-policy"] == CONSOLE_POLICY
    assert data.headers["content-security-policy"] == API_POLICY
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/probe/ok", "application/json"),
        ("/nowhere", "application/problem+json"),
        ("/probe/html", "text/html; charset=utf-8"),
        ("/probe/text", "text/plain; charset=utf-8"),
        ("/probe/csv", "text/csv; charset=utf-8"),
        ("/docs/swagger-ui.css", "text/css; charset=utf-8"),
        ("/docs/swagger-init.js", "text/javascript; charset=utf-8"),
    ],
)
async def test_text_content_types_carry_a_charset_and_json_none(
    make_client: ClientFactory, path: str, content_type: str
) -> None:
    # JSON has no charset parameter (RFC 8259); see docs/decisions/0002.
    async with make_client() as http:
        response = await http.get(path)
    assert response.headers["content-type"] == content_type


async def test_docs_are_served_from_our_origin_under_their_own_narrow_policy(
    make_client: ClientFactory,
) -> None:
    async with make_client() as http:
        page = await http.get("/docs")
        assets = [
            await http.get(path)
            for path in (
                "/docs/swagger-ui-bundle.js",
                "/docs/swagger-ui.css",
                "/docs/swagger-init.js",
                "/docs/favicon.png",
            )
        ]
        redirect = await http.get("/docs/oauth2-redirect")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == DOCS_POLICY
    assert "<script>" not in page.text  # no inline script: every <script> has a src
    assert "cdn" not in page.text.lower()
    assert "'unsafe-inline'" not in DOCS_POLICY
    assert "'unsafe-eval'" not in DOCS_POLICY
    assert "http" not in DOCS_POLICY  # no other origin
    for asset in assets:
        assert asset.status_code == 200
        assert asset.headers["content-security-policy"] == API_POLICY
        assert "immutable" in asset.headers["cache-control"]
    assert b"SwaggerUIBundle" in assets[0].content
    assert redirect.status_code == 404  # its inline script is not served


async def test_docs_are_absent_when_disabled(make_client: ClientFactory) -> None:
    async with make_client(docs_enabled=False) as http:
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/docs/swagger-ui-bundle.js")).status_code == 404
