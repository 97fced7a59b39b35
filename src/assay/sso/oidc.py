"""OpenID Connect relying party: discovery, keys, code exchange and ID token checks.

Protocol only. Who may sign in, and as whom, is decided in `assay.sso.service`.
Every outbound call goes to an endpoint of a configured issuer, over TLS (plain http
only to loopback outside production), without following redirects, with a timeout
and a size limit, after the destination's addresses have been checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import jwt

from assay.outbound.errors import DestinationRefused, OutboundFailed
from assay.outbound.service import (
    OutboundClient,
    OutboundPolicy,
    OutboundResponse,
    parse_networks,
)
from assay.settings import OidcProvider, Settings

# Asymmetric only: an HS* token would be "signed" with the client secret, which the
# provider and we share, and "none" is no signature at all.
ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})
_MAX_RESPONSE_BYTES = 512 * 1024
_METADATA_TTL_SECONDS = 3600.0
_JWKS_TTL_SECONDS = 3600.0
# An unknown key id triggers a JWKS refresh (key rotation), at most this often, so
# forged tokens cannot make us hammer the provider.
_JWKS_MIN_REFRESH_SECONDS = 60.0
_REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat"]


class OidcError(Exception):
    """Why a sign-in with a provider failed: for the log and the security event only."""

    def __init__(self, reason: str, **details: str) -> None:
        self.reason = reason
        self.details = details
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str


def new_pkce() -> Pkce:
    """A PKCE verifier (86 characters, 512 bits) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return Pkce(verifier=verifier, challenge=challenge)


def _check_url_shape(url: object, *, production: bool) -> str:
    if not isinstance(url, str):
        raise OidcError("endpoint_url_invalid")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username:
        raise OidcError("endpoint_url_invalid")
    if parts.scheme == "http" and (production or not _names_loopback(parts.hostname)):
        raise OidcError("endpoint_not_https")
    return url


def _names_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])
# What allow_private_network opens: the private ranges, never link-local (metadata).
_PRIVATE = parse_networks(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"])
_REFUSALS = {
    "url_invalid": "endpoint_url_invalid",
    "not_https": "endpoint_not_https",
    "name_unresolved": "endpoint_name_unresolved",
    "address_refused": "endpoint_address_refused",
}


def _policy(
    allowed: Sequence[str], timeout: float, *, production: bool, allow_private: bool
) -> OutboundPolicy:
    """The outbound guard's policy for one provider.

    Loopback is where the test provider lives, so it is allowed outside production;
    private ranges only for a provider that opted in; plain http only to loopback.
    """
    networks = (
        parse_networks(allowed)
        + (() if production else _LOOPBACK)
        + (_PRIVATE if allow_private else ())
    )
    return OutboundPolicy(
        allow_http=not production,
        allowed_networks=networks,
        http_networks=_LOOPBACK,
        connect_timeout_seconds=timeout,
        timeout_seconds=timeout,
        max_response_bytes=_MAX_RESPONSE_BYTES + 1,
    )


async def check_destination(
    url: str,
    *,
    production: bool,
    allow_private: bool,
    allowed_networks: Sequence[str] = (),
) -> None:
    """Refuse a URL whose host is, or resolves to, an address we must not call."""
    await _checked_client(
        url, allowed_networks, 10.0, production=production, allow_private=allow_private
    ).check(url)


def _checked_client(
    url: str, allowed: Sequence[str], timeout: float, *, production: bool, allow_private: bool
) -> _OidcOutbound:
    _check_url_shape(url, production=production)
    policy = _policy(allowed, timeout, production=production, allow_private=allow_private)
    return _OidcOutbound(OutboundClient(policy))


@dataclass(frozen=True, slots=True)
class _OidcOutbound:
    """The outbound guard, with its refusals turned into OIDC reasons."""

    client: OutboundClient

    async def check(self, url: str) -> None:
        try:
            await self.client.check(url)
        except DestinationRefused as exc:
            raise OidcError(_REFUSALS[exc.reason]) from None

    async def request(self, what: str, method: str, url: str, **kwargs: Any) -> OutboundResponse:
        # One resolution: the addresses checked are the ones connected to.
        try:
            return await self.client.request(method, url, **kwargs)
        except DestinationRefused as exc:
            raise OidcError(_REFUSALS[exc.reason]) from None
        except OutboundFailed as exc:
            raise OidcError(f"{what}_unreachable", error=exc.reason) from None


@dataclass
class OidcClient:
    """Talks to the configured providers; caches their metadata and keys per process."""

    settings: Settings
    _metadata: dict[str, tuple[float, ProviderMetadata]] = field(default_factory=dict)
    _jwks: dict[str, tuple[float, list[dict[str, Any]]]] = field(default_factory=dict)

    async def _call(
        self, provider: OidcProvider, what: str, method: str, url: str, **kwargs: Any
    ) -> Any:
        outbound = _checked_client(
            url,
            self.settings.outbound_allowed_networks,
            self.settings.sso_http_timeout_seconds,
            production=self.settings.is_production,
            allow_private=provider.allow_private_network,
        )
        # Checked, pinned to the checked address, no redirects, bounded time and size.
        response = await outbound.request(what, method, url, **kwargs)
        if response.truncated or len(response.body) > _MAX_RESPONSE_BYTES:
            raise OidcError(f"{what}_response_too_large")
        body = response.body
        try:
            document = json.loads(body)
        except ValueError:
            raise OidcError(f"{what}_not_json", status=str(response.status_code)) from None
        if response.status_code != 200:
            # The OAuth error code (e.g. invalid_grant) helps operators; the rest of
            # the body is not logged, it may echo what we sent.
            code = document.get("error") if isinstance(document, dict) else None
            raise OidcError(
                f"{what}_refused",
                status=str(response.status_code),
                error=str(code)[:64] if code else "",
            )
        if not isinstance(document, dict):
            raise OidcError(f"{what}_not_json")
        return document

    async def metadata(self, provider: OidcProvider) -> ProviderMetadata:
        """The provider's endpoints, from its discovery document (cached for an hour)."""
        cached = self._metadata.get(provider.issuer)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._call(provider, "discovery", "GET", url)
        # OpenID Connect Discovery 1.0 section 4.3: the document must name exactly the
        # issuer it was fetched for, or it is someone else's.
        if document.get("issuer") != provider.issuer:
            raise OidcError("discovery_issuer_mismatch")
        production = self.settings.is_production
        metadata = ProviderMetadata(
            authorization_endpoint=_check_url_shape(
                document.get("authorization_endpoint"), production=production
            ),
            token_endpoint=_check_url_shape(document.get("token_endpoint"), production=production),
            jwks_uri=_check_url_shape(document.get("jwks_uri"), production=production),
        )
        self._metadata[provider.issuer] = (time.monotonic() + _METADATA_TTL_SECONDS, metadata)
        return metadata

    def authorization_url(
        self,
        provider: OidcProvider,
        metadata: ProviderMetadata,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_challenge: str,
    ) -> str:
        parts = urlsplit(metadata.authorization_endpoint)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(provider.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        # Keep any query the provider's endpoint already carries (some tenants use one).
        query = f"{parts.query}&{query}" if parts.query else query
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    async def exchange_code(
        self, provider: OidcProvider, *, code: str, redirect_uri: str, verifier: str
    ) -> str:
        """The ID token the token endpoint gives for this code and PKCE verifier."""
        metadata = await self.metadata(provider)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"accept": "application/json"}
        secret = provider.client_secret.get_secret_value()
        if provider.token_endpoint_auth_method == "client_secret_post":  # noqa: S105 - a method name  # nosec B105
            form |= {"client_id": provider.client_id, "client_secret": secret}
        else:
            # RFC 6749 section 2.3.1: both parts are form-encoded before Basic encoding.
            pair = f"{quote(provider.client_id, safe='')}:{quote(secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        document = await self._call(
            provider, "token_endpoint", "POST", metadata.token_endpoint, data=form, headers=headers
        )
        id_token = document.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise OidcError("token_response_without_id_token")
        return id_token

    async def _keys(self, provider: OidcProvider, *, refresh: bool) -> list[dict[str, Any]]:
        cached = self._jwks.get(provider.issuer)
        now = time.monotonic()
        if cached is not None:
            fetched_at, keys = cached
            fresh = now - fetched_at < _JWKS_TTL_SECONDS
            if (fresh and not refresh) or now - fetched_at < _JWKS_MIN_REFRESH_SECONDS:
                return keys
        metadata = await self.metadata(provider)
        document = await self._call(provider, "jwks", "GET", metadata.jwks_uri)
        raw_keys = document.get("keys")
        if not isinstance(raw_keys, list):
            raise OidcError("jwks_malformed")
        keys = [key for key in raw_keys if isinstance(key, dict)]
        self._jwks[provider.issuer] = (now, keys)
        return keys

    async def _signing_key(self, provider: OidcProvider, kid: str | None, alg: str) -> jwt.PyJWK:
        key = _pick_key(await self._keys(provider, refresh=False), kid, alg)
        if key is None:
            key = _pick_key(await self._keys(provider, refresh=True), kid, alg)
        if key is None:
            raise OidcError("id_token_key_unknown")
        try:
            return jwt.PyJWK(key, algorithm=alg)
        except jwt.PyJWTError:
            raise OidcError("jwks_key_unusable") from None

    async def verify_id_token(
        self, provider: OidcProvider, id_token: str, *, nonce: str
    ) -> dict[str, Any]:
        """The ID token's claims, once its signature, issuer, audience, times and nonce hold."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise OidcError("id_token_malformed") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise OidcError("id_token_algorithm_refused", alg=str(alg)[:16])
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise OidcError("id_token_malformed")
        # Only the provider's JWKS supplies keys; jku, x5u, jwk and x5c are never read.
        key = await self._signing_key(provider, kid, str(alg))
        claims = _decode(id_token, key, provider, self.settings.sso_clock_skew_seconds)
        _check_claims(claims, provider, self.settings, nonce)
        return claims


def _pick_key(keys: list[dict[str, Any]], kid: str | None, alg: str) -> dict[str, Any] | None:
    kty, curve = ("RSA", None) if alg == "RS256" else ("EC", "P-256")
    candidates = [
        key
        for key in keys
        if key.get("kty") == kty
        and key.get("use", "sig") == "sig"
        and key.get("alg", alg) == alg
        and (curve is None or key.get("crv") == curve)
    ]
    if kid is not None:
        candidates = [key for key in candidates if key.get("kid") == kid]
    # Without a kid, only an unambiguous key set is usable.
    return candidates[0] if len(candidates) == 1 else None


def _decode(id_token: str, key: jwt.PyJWK, provider: OidcProvider, skew: int) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=[key.algorithm_name],
            audience=provider.client_id,
            issuer=provider.issuer,
            leeway=skew,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise OidcError("id_token_expired") from None
    except jwt.ImmatureSignatureError:
        raise OidcError("id_token_not_yet_valid") from None
    except jwt.InvalidIssuerError:
        raise OidcError("id_token_issuer_mismatch") from None
    except jwt.InvalidAudienceError:
        raise OidcError("id_token_audience_mismatch") from None
    except jwt.InvalidSignatureError:
        raise OidcError("id_token_signature_invalid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise OidcError("id_token_claim_missing", claim=exc.claim) from None
    except jwt.PyJWTError:
        raise OidcError("id_token_invalid") from None
    return claims


def _check_claims(
    claims: dict[str, Any], provider: OidcProvider, settings: Settings, nonce: str
) -> None:
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != provider.client_id:
        raise OidcError("id_token_azp_mismatch")
    # A token minted long before this sign-in started was not minted for it.
    oldest = time.time() - settings.sso_state_ttl_seconds - settings.sso_clock_skew_seconds
    if not isinstance(claims["iat"], int | float) or claims["iat"] < oldest:
        raise OidcError("id_token_too_old")
    received = claims.get("nonce")
    if not isinstance(received, str) or not hmac.compare_digest(received.encode(), nonce.encode()):
        raise OidcError("id_token_nonce_mismatch")
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise OidcError("id_token_subject_invalid")
