"""Single sign-on against a real (local) OpenID Connect provider; every tampered field fails."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy import select

from assay.accounts.models import User
from assay.audit.models import SecurityEvent
from assay.audit.service import CLI
from assay.core.config_view import masked_settings
from assay.core.principal import PLATFORM
from assay.orgs import service as orgs
from assay.orgs.models import Membership
from assay.settings import Settings
from assay.sso.models import UserIdentity
from assay.sso.oidc import OidcError, check_destination
from tests.support.identity import MakeMember, bearer, enrol_totp, login

from ..conftest import KNOWN_SECRETS, new_secret

CLIENT_ID = "assay-test-client"
ORG_SLUG = "acme"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FakeProvider:
    """An OpenID Connect provider on 127.0.0.1: discovery, JWKS, authorize and token."""

    client_secret: str
    issuer: str = ""
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = "key-1"
    # The person signing in at the provider, and any claim a test wants to change.
    subject: str = field(default_factory=lambda: uuid.uuid4().hex)
    email: str = "new.person@example.org"
    email_verified: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)
    # Replaces the signing step (forged algorithms, foreign keys).
    mint: Callable[[dict[str, Any]], str] | None = None
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def jwks(self) -> dict[str, Any]:
        public = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": self.kid,
                    "use": "sig",
                    "alg": "RS256",
                    "n": _b64(public.n.to_bytes((public.n.bit_length() + 7) // 8, "big")),
                    "e": _b64(public.e.to_bytes(3, "big")),
                }
            ]
        }

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def authorize(self, query: dict[str, str]) -> str:
        assert query["response_type"] == "code"
        assert query["client_id"] == CLIENT_ID
        assert query["code_challenge_method"] == "S256"
        assert "openid" in query["scope"].split()
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "challenge": query["code_challenge"],
            "nonce": query["nonce"],
            "redirect_uri": query["redirect_uri"],
        }
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if client_id != CLIENT_ID or secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        if _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "email": self.email,
            "email_verified": self.email_verified,
            "name": "New Person",
            **self.overrides,
        }
        if self.mint is not None:
            id_token = self.mint(claims)
        else:
            id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        KNOWN_SECRETS.add(id_token)
        return 200, {"access_token": new_secret(), "token_type": "Bearer", "id_token": id_token}


def _handler(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._send(200, provider.discovery())
            elif parts.path == "/jwks":
                self._send(200, provider.jwks())
            elif parts.path == "/authorize":
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self.send_response(302)
                self.send_header("location", provider.authorize(query))
                self.send_header("content-length", "0")
                self.end_headers()
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if self.path == "/token":
                self._send(*provider.token(form, self.headers.get("authorization")))
            else:
                self._send(404, {"error": "not_found"})

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider(client_secret=new_secret())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], database_url: str, provider: FakeProvider
) -> Settings:
    common = {
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        "client_secret": provider.client_secret,
    }
    return settings_factory(
        database_url=database_url,
        oidc_providers=[
            {
                **common,
                "name": "corp",
                "allowed_domains": ["example.org"],
                "org": ORG_SLUG,
                "role": "viewer",
                "auto_create": True,
            },
            # Same provider, other client authentication, no account creation.
            {**common, "name": "manual", "token_endpoint_auth_method": "client_secret_post"},
        ],
    )


@pytest.fixture
async def acme(app: FastAPI) -> uuid.UUID:
    async with app.state.database.sessionmaker() as db:
        org = await orgs.create_organisation(db, CLI, PLATFORM, name="Acme", slug=ORG_SLUG)
        await db.commit()
        return org.id


@dataclass
class Flow:
    code: str
    state: str


async def start(client: httpx.AsyncClient, name: str = "corp", **params: str) -> str:
    response = await client.get(f"/v1/auth/sso/{name}/start", params=params)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def at_provider(location: str) -> Flow:
    """What the browser does at the provider: follow its redirect back to us."""
    async with httpx.AsyncClient() as browser:
        response = await browser.get(location)
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return Flow(code=query["code"][0], state=query["state"][0])


async def callback(client: httpx.AsyncClient, flow: Flow, name: str = "corp") -> httpx.Response:
    response = await client.get(
        f"/v1/auth/sso/{name}/callback", params={"code": flow.code, "state": flow.state}
    )
    if response.status_code == 200:
        for key in ("access_token", "refresh_token", "challenge", "csrf_token"):
            if key in response.json():
                KNOWN_SECRETS.add(response.json()[key])
    return response


async def sign_in(client: httpx.AsyncClient, name: str = "corp") -> httpx.Response:
    return await callback(client, await at_provider(await start(client, name)), name)


async def last_failure(app: FastAPI) -> str:
    async with app.state.database.sessionmaker() as db:
        event = (
            (
                await db.execute(
                    select(SecurityEvent)
                    .where(SecurityEvent.action == "login.sso", SecurityEvent.outcome == "failure")
                    .order_by(SecurityEvent.occurred_at.desc())
                )
            )
            .scalars()
            .first()
        )
    assert event is not None
    reason: str = event.details["reason"]
    return reason


def assert_generic_failure(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:assay:problem:sso-sign-in-failed"
    assert body["title"] == "Sign-in failed"


# --- the happy paths ----------------------------------------------------------------------


async def test_start_redirects_with_state_nonce_and_pkce(
    client: httpx.AsyncClient, provider: FakeProvider
) -> None:
    response = await client.get("/v1/auth/sso/corp/start")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{provider.issuer}/authorize"
    query = parse_qs(location.query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 43
    assert len(query["nonce"][0]) >= 43
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/v1/auth/sso/corp/callback"]
    cookie = response.headers["set-cookie"].lower()
    assert "assay_sso=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "max-age=600" in cookie


async def test_new_person_is_created_in_the_provider_org_and_gets_working_tokens(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    response = await sign_in(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "full"
    assert body["org_id"] == str(acme)
    me = await client.get("/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == provider.email
    assert "members:manage" not in me.json()["permissions"]  # a viewer

    async with app.state.database.sessionmaker() as db:
        user = (await db.execute(select(User).where(User.email == provider.email))).scalar_one()
        assert user.password_hash is None
        assert user.email_verified_at is not None
        link = (await db.execute(select(UserIdentity))).scalar_one()
        assert (link.issuer, link.subject, link.user_id) == (
            provider.issuer,
            provider.subject,
            user.id,
        )

    # The same (iss, sub) signs in again as the same user, even with a new address.
    provider.email = "renamed@example.org"
    again = await sign_in(client)
    assert again.status_code == 200, again.text
    me = await client.get("/v1/me", headers=bearer(again.json()["access_token"]))
    assert me.json()["id"] == str(user.id)


async def test_verified_email_links_an_existing_user(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, make_member: MakeMember
) -> None:
    member = await make_member(role="analyst", email="existing@example.org")
    provider.email = member.email
    response = await sign_in(client, "manual")
    assert response.status_code == 200, response.text
    me = await client.get("/v1/me", headers=bearer(response.json()["access_token"]))
    assert me.json()["id"] == str(member.user_id)
    async with app.state.database.sessionmaker() as db:
        linked = (
            await db.execute(
                select(SecurityEvent).where(SecurityEvent.action == "sso.identity_linked")
            )
        ).scalar_one()
        assert linked.target_id == str(member.user_id)
        link = (await db.execute(select(UserIdentity))).scalar_one()
        assert link.user_id == member.user_id


async def test_user_with_mfa_gets_the_challenge_not_tokens(
    client: httpx.AsyncClient, provider: FakeProvider, make_member: MakeMember
) -> None:
    member = await make_member(email="guarded@example.org")
    await enrol_totp(client, (await login(client, member))["access_token"])
    provider.email = member.email
    response = await sign_in(client, "manual")
    assert response.status_code == 200, response.text
    assert response.json()["mfa_required"] is True
    assert "access_token" not in response.json()


async def test_console_session_sets_the_session_cookie(
    client: httpx.AsyncClient, provider: FakeProvider, acme: uuid.UUID
) -> None:
    flow = await at_provider(await start(client, session="console"))
    response = await callback(client, flow)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"csrf_token", "org_id", "scope"}
    assert client.cookies.get("assay_session")
    KNOWN_SECRETS.add(client.cookies["assay_session"])
    me = await client.get("/v1/me")
    assert me.status_code == 200
    assert me.json()["email"] == provider.email


# --- the state, and its binding to the browser ------------------------------------------


async def test_wrong_state_is_refused(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    flow = await at_provider(await start(client))
    assert_generic_failure(await callback(client, Flow(flow.code, secrets.token_urlsafe(32))))
    assert await last_failure(app) == "state_unknown_or_expired"


async def test_reused_state_is_refused(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    flow = await at_provider(await start(client))
    first = await callback(client, flow)
    assert first.status_code == 200, first.text
    assert_generic_failure(await callback(client, flow))
    assert await last_failure(app) in {"state_unknown_or_expired", "state_reused"}


async def test_missing_state_cookie_is_refused(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    flow = await at_provider(await start(client))
    client.cookies.clear()
    assert_generic_failure(await callback(client, flow))
    assert await last_failure(app) == "state_cookie_missing"


async def test_state_from_another_browser_is_refused(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    victim = await at_provider(await start(client))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as attacker:
        await start(attacker)  # the attacker has a binding cookie of their own
        assert_generic_failure(await callback(attacker, victim))
    assert await last_failure(app) == "state_cookie_mismatch"


async def test_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/v1/auth/sso/nope/start", "/v1/auth/sso/nope/callback?code=a&state=b"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")


# --- the ID token ---------------------------------------------------------------------------


def _forged_none(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"nonce": "not-the-nonce"}, "id_token_nonce_mismatch"),
        ({"iss": "https://issuer.invalid"}, "id_token_issuer_mismatch"),
        ({"aud": "another-client"}, "id_token_audience_mismatch"),
        ({"aud": [CLIENT_ID, "another-client"]}, "id_token_azp_mismatch"),
        (
            {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3900},
            "id_token_expired",
        ),
        ({"nbf": int(time.time()) + 3600}, "id_token_not_yet_valid"),
    ],
)
async def test_tampered_claims_are_refused(
    client: httpx.AsyncClient,
    app: FastAPI,
    provider: FakeProvider,
    acme: uuid.UUID,
    tamper: dict[str, Any],
    reason: str,
) -> None:
    provider.overrides = tamper
    assert_generic_failure(await sign_in(client))
    assert await last_failure(app) == reason


async def test_token_signed_by_another_key_is_refused(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.mint = lambda claims: jwt.encode(
        claims, other, algorithm="RS256", headers={"kid": provider.kid}
    )
    assert_generic_failure(await sign_in(client))
    assert await last_failure(app) == "id_token_signature_invalid"


async def test_alg_none_is_refused(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    provider.mint = _forged_none
    assert_generic_failure(await sign_in(client))
    assert await last_failure(app) == "id_token_algorithm_refused"


async def test_hs256_signed_with_the_client_secret_is_refused(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    provider.mint = lambda claims: jwt.encode(
        claims, provider.client_secret, algorithm="HS256", headers={"kid": provider.kid}
    )
    assert_generic_failure(await sign_in(client))
    assert await last_failure(app) == "id_token_algorithm_refused"


async def test_key_in_the_token_header_is_ignored(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    # Signed by the attacker, who also offers their public key and a JWKS URL.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(other.public_key(), as_dict=True)
    provider.mint = lambda claims: jwt.encode(
        claims,
        other,
        algorithm="RS256",
        headers={"kid": "attacker", "jwk": public, "jku": f"{provider.issuer}/evil"},
    )
    assert_generic_failure(await sign_in(client))
    assert await last_failure(app) == "id_token_key_unknown"


# --- who may be signed in -------------------------------------------------------------------


async def test_unverified_email_does_not_link_an_existing_user(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, make_member: MakeMember
) -> None:
    member = await make_member(email="victim@example.org")
    provider.email, provider.email_verified = member.email, False
    assert_generic_failure(await sign_in(client, "manual"))
    assert await last_failure(app) == "email_missing_or_unverified"
    async with app.state.database.sessionmaker() as db:
        assert (await db.execute(select(UserIdentity))).first() is None


async def test_domain_outside_the_allow_list_is_refused(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    provider.email = "someone@elsewhere.test"
    assert_generic_failure(await sign_in(client))
    assert await last_failure(app) == "email_domain_not_allowed"
    async with app.state.database.sessionmaker() as db:
        assert (await db.execute(select(User))).first() is None


async def test_unknown_person_is_refused_without_auto_create(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider
) -> None:
    assert_generic_failure(await sign_in(client, "manual"))
    assert await last_failure(app) == "no_matching_user"


async def test_created_user_joins_only_the_provider_org(
    client: httpx.AsyncClient, app: FastAPI, provider: FakeProvider, acme: uuid.UUID
) -> None:
    assert (await sign_in(client)).status_code == 200
    async with app.state.database.sessionmaker() as db:
        from assay.core.tenancy import across_tenants

        memberships = (await db.execute(across_tenants(select(Membership), "test"))).scalars().all()
    assert [(m.org_id, m.role) for m in memberships] == [(acme, "viewer")]


# --- configuration and outbound calls -----------------------------------------------------


def test_client_secret_is_masked_in_config_show(provider: FakeProvider, settings: Settings) -> None:
    shown = json.dumps(masked_settings(settings))
    assert provider.client_secret not in shown
    assert shown.count('"client_secret": "********"') == 2


def test_plain_http_issuer_is_refused_in_production_and_off_loopback(
    settings_factory: Callable[..., Settings],
) -> None:
    base = {"name": "x", "client_id": "c", "client_secret": new_secret()}
    with pytest.raises(ValueError, match="https"):
        settings_factory(oidc_providers=[{**base, "issuer": "http://idp.example.org"}])
    with pytest.raises(ValueError, match="https"):
        Settings(env="production", oidc_providers=[{**base, "issuer": "http://127.0.0.1:9"}])


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest",  # cloud metadata, link-local
        "https://10.0.0.5/token",  # private, not allowed for this provider
        "https://[::ffff:10.0.0.5]/token",  # the same, IPv4-mapped
        "https://0.0.0.0/token",
        "http://93.184.215.14/token",  # plain http off loopback
        "https://user@idp.example.org/token",
    ],
)
async def test_outbound_destinations_are_checked_before_connecting(url: str) -> None:
    with pytest.raises(OidcError):
        await check_destination(url, production=False, allow_private=False)


async def test_loopback_is_refused_in_production_and_private_needs_opt_in() -> None:
    with pytest.raises(OidcError):
        await check_destination("https://127.0.0.1/token", production=True, allow_private=False)
    await check_destination("https://10.0.0.5/token", production=False, allow_private=True)
    with pytest.raises(OidcError):
        await check_destination(
            "https://169.254.169.254/token", production=False, allow_private=True
        )


async def test_provider_unreachable_at_start_is_a_503_problem(
    settings_factory: Callable[..., Settings], database_url: str, free_port: int
) -> None:
    from assay.app import create_app

    settings = settings_factory(
        database_url=database_url,
        oidc_providers=[
            {
                "name": "gone",
                "issuer": f"http://127.0.0.1:{free_port}",
                "client_id": CLIENT_ID,
                "client_secret": new_secret(),
            }
        ],
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get("/v1/auth/sso/gone/start")
    assert response.status_code == 503
    assert response.json()["type"] == "urn:assay:problem:sso-provider-unavailable"
