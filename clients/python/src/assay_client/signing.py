"""Request signing for API keys marked "signing required" (RFC 9421 subset, HMAC-SHA256).

A signed request carries three headers:

    Content-Digest:  sha-256=:<base64 SHA-256 of the body bytes>:          (RFC 9530)
    Signature-Input: sig1=("@method" "@path" "@query" "content-digest" "content-type");
                     created=<unix>;keyid="<API key id>";nonce="<random>";alg="hmac-sha256"
    Signature:       sig1=:<base64 HMAC-SHA256 of the signature base>:

The signature base is RFC 9421 section 2.5's: one ``"name": value`` line per covered
component, then the ``"@signature-params"`` line. `content-type` is covered whenever the
request has one, so a body cannot be made to be read as another media type. The server
refuses a reused nonce and a `created` outside its clock window, so the machine's clock
must be roughly right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Generator, Mapping, Sequence

import httpx

ALGORITHM = "hmac-sha256"
LABEL = "sig1"
REQUIRED_COMPONENTS: tuple[str, ...] = ("@method", "@path", "@query", "content-digest")
COVERED_WHEN_PRESENT: tuple[str, ...] = ("content-type",)
API_KEY_PREFIX = "assay_sk_"


def content_digest(body: bytes) -> str:
    """The RFC 9530 `Content-Digest` value of `body`."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def signature_params(components: Sequence[str], *, created: int, key_id: str, nonce: str) -> str:
    """The `@signature-params` value, which is also the `Signature-Input` member value."""
    inner = " ".join(f'"{name}"' for name in components)
    return f'({inner});created={created};keyid="{key_id}";nonce="{nonce}";alg="{ALGORITHM}"'


def signature_base(component_values: Mapping[str, str], params: str) -> bytes:
    """RFC 9421 section 2.5: `"name": value` lines in order, then `@signature-params`."""
    lines = [f'"{name}": {value}' for name, value in component_values.items()]
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode()


def decode_signing_secret(value: str) -> bytes:
    """The signing secret as Assay shows it (unpadded base64url) back to its bytes."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def api_key_id(api_key: str) -> str:
    """The public id part of an API key (`assay_sk_<id>_<secret>`), the signature's keyid."""
    key_id, separator, _ = api_key.removeprefix(API_KEY_PREFIX).partition("_")
    if not api_key.startswith(API_KEY_PREFIX) or not separator or not key_id:
        msg = "not an Assay API key (expected assay_sk_<id>_<secret>)"
        raise ValueError(msg)
    return key_id


def sign_request(
    request: httpx.Request,
    *,
    key_id: str,
    secret: bytes,
    created: int | None = None,
    nonce: str | None = None,
) -> None:
    """Add `Content-Digest`, `Signature-Input` and `Signature` to `request` in place.

    The body is read into memory: the digest covers every byte of it.
    """
    request.headers["content-digest"] = content_digest(request.read())
    covered = [name for name in COVERED_WHEN_PRESENT if name in request.headers]
    components = [*REQUIRED_COMPONENTS, *covered]
    values: dict[str, str] = {
        "@method": request.method.upper(),
        "@path": request.url.raw_path.split(b"?", 1)[0].decode("ascii"),
        "@query": "?" + request.url.query.decode("ascii"),
        "content-digest": request.headers["content-digest"],
    }
    for name in covered:
        values[name] = request.headers[name].strip()
    params = signature_params(
        components,
        created=int(time.time()) if created is None else created,
        key_id=key_id,
        nonce=nonce or secrets.token_urlsafe(24),
    )
    digest = hmac.new(secret, signature_base(values, params), hashlib.sha256).digest()
    request.headers["signature-input"] = f"{LABEL}={params}"
    request.headers["signature"] = f"{LABEL}=:{base64.b64encode(digest).decode()}:"


class SigningAuth(httpx.Auth):
    """httpx authentication: the API key in `X-API-Key`, and every request signed."""

    requires_request_body = True

    def __init__(self, api_key: str, signing_secret: str) -> None:
        self._api_key = api_key
        self._key_id = api_key_id(api_key)
        self._secret = decode_signing_secret(signing_secret)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self._api_key
        sign_request(request, key_id=self._key_id, secret=self._secret)
        yield request
