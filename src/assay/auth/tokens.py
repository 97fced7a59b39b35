"""Access tokens (JWT, HS256 pinned) and opaque tokens (refresh, email, API keys)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from assay.core.crypto import derive_key
from assay.core.errors import Unauthorized
from assay.settings import Settings

ALGORITHM = "HS256"
AUDIENCE = "assay-api"
ACCESS = "access"
MFA_CHALLENGE = "mfa_challenge"
_REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "typ"]
API_KEY_PREFIX = "assay_sk_"


class InvalidToken(Unauthorized):
    title = "Invalid or expired credentials"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


class TokenSigner:
    """Issues and checks our JWTs; keys only from settings, never from a token header."""

    def __init__(self, settings: Settings) -> None:
        if settings.token_signing_key is None:
            msg = "token signing key missing"
            raise RuntimeError(msg)
        self._key = derive_key(settings.token_signing_key.get_secret_value(), "assay jwt v1")
        self._kid = hashlib.sha256(self._key).hexdigest()[:16]
        self._issuer = settings.public_url.rstrip("/")
        self._access_ttl = settings.access_token_ttl_seconds
        self._challenge_ttl = settings.mfa_challenge_ttl_seconds

    def _issue(self, claims: dict[str, Any], ttl: int) -> IssuedToken:
        now = int(time.time())
        payload = {
            **claims,
            "iss": self._issuer,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self._kid})
        return IssuedToken(token=token, expires_in=ttl)

    def issue_access(
        self, user_id: uuid.UUID, org_id: uuid.UUID | None, session_id: uuid.UUID
    ) -> IssuedToken:
        return self._issue(
            {
                "typ": ACCESS,
                "sub": str(user_id),
                "org": str(org_id) if org_id else None,
                "sid": str(session_id),
            },
            self._access_ttl,
        )

    def issue_mfa_challenge(self, user_id: uuid.UUID, org_id: uuid.UUID | None) -> IssuedToken:
        return self._issue(
            {
                "typ": MFA_CHALLENGE,
                "sub": str(user_id),
                "org": str(org_id) if org_id else None,
                # `iat` is whole seconds; a lock, password change or completed second
                # factor voids the challenges issued before it, to the microsecond.
                "at": round(time.time(), 6),
            },
            self._challenge_ttl,
        )

    def decode(self, token: str, expected_type: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            # Pinned: "none", RS/ES confusion and key-bearing headers are all refused.
            if header.get("alg") != ALGORITHM:
                raise InvalidToken("The token is not valid.")
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The token has expired.") from None
        except jwt.PyJWTError:
            raise InvalidToken("The token is not valid.") from None
        if claims.get("typ") != expected_type:
            raise InvalidToken("The token is not valid here.")
        return claims


@dataclass(frozen=True, slots=True)
class ApiKeyParts:
    key_id: str
    secret: str


def new_api_key() -> tuple[str, ApiKeyParts]:
    parts = ApiKeyParts(key_id=secrets.token_hex(8), secret=secrets.token_urlsafe(32))
    return f"{API_KEY_PREFIX}{parts.key_id}_{parts.secret}", parts


def parse_api_key(value: str) -> ApiKeyParts | None:
    if not value.startswith(API_KEY_PREFIX) or len(value) > 200:
        return None
    key_id, _, secret = value[len(API_KEY_PREFIX) :].partition("_")
    if len(key_id) != 16 or not secret:
        return None
    return ApiKeyParts(key_id=key_id, secret=secret)
