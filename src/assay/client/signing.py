"""Request signing for API keys marked "signing required" (RFC 9421 subset, HMAC-SHA256).

A signed request carries three headers:

    Content-Digest:  sha-256=:<base64 SHA-256 of the body bytes>:          (RFC 9530)
    Signature-Input: sig1=("@method" "@path" "@query" "content-digest");created=<unix>;
                     keyid="<API key id>";nonce="<random>";alg="hmac-sha256"
    Signature:       sig1=:<base64 HMAC-SHA256 of the signature base>:

The signature base is built as RFC 9421 section 2.5 says: one line per covered
component, then the `@signature-params` line. The server requires the four components
above; a client may cover further header fields, which are then checked too. The helper
also covers `content-type` whenever the request has one, so a body cannot be made to
be read as another media type.

With httpx::

    from assay.client import SignedRequestAuth

    auth = SignedRequestAuth(api_key="assay_sk_...", signing_secret="...")
    httpx.post("https://assay.example/v1/...", json={...}, auth=auth)

`SignedRequestAuth` also sends the API key itself (`X-API-Key`), so it is the only
credential the client needs to pass. It works with `httpx.Client` and `httpx.AsyncClient`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Generator, Iterable, Mapping, Sequence

import httpx

ALGORITHM = "hmac-sha256"
LABEL = "sig1"
REQUIRED_COMPONENTS: tuple[str, ...] = ("@method", "@path", "@query", "content-digest")
# Covered by the helper whenever the request carries them.
DEFAULT_COVERED_HEADERS: tuple[str, ...] = ("content-type",)
API_KEY_PREFIX = "assay_sk_"


def content_digest(body: bytes) -> str:
    """The RFC 9530 `Content-Digest` value for `body`."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def query_component(raw_query: str) -> str:
    """RFC 9421 `@query`: the query exactly as sent, with its `?` (alone when absent)."""
    return f"?{raw_query}"


def signature_params(
    components: Sequence[str], *, created: int, key_id: str, nonce: str, alg: str = ALGORITHM
) -> str:
    """The `@signature-params` value, which is also the `Signature-Input` member value."""
    inner = " ".join(f'"{name}"' for name in components)
    return f'({inner});created={created};keyid="{key_id}";nonce="{nonce}";alg="{alg}"'


def signature_base(component_values: Mapping[str, str], params: str) -> bytes:
    """RFC 9421 section 2.5: `"name": value` lines in order, then `@signature-params`."""
    lines = [f'"{name}": {value}' for name, value in component_values.items()]
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode()


def compute_signature(secret: bytes, base: bytes) -> bytes:
    return hmac.new(secret, base, hashlib.sha256).digest()


def decode_signing_secret(value: str) -> bytes:
    """The signing secret as issued (unpadded base64url) back to its 32 bytes."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def api_key_id(api_key: str) -> str:
    """The public id part of an API key (`assay_sk_<id>_<secret>`), used as `keyid`."""
    rest = api_key.removeprefix(API_KEY_PREFIX)
    key_id, separator, _ = rest.partition("_")
    if not api_key.startswith(API_KEY_PREFIX) or not separator or not key_id:
        msg = "not an Assay API key"
        raise ValueError(msg)
    return key_id


def sign_request(
    request: httpx.Request,
    *,
    key_id: str,
    signing_secret: bytes,
    extra_headers: Iterable[str] = (),
    created: int | None = None,
    nonce: str | None = None,
) -> None:
    """Add `Content-Digest`, `Signature-Input` and `Signature` to `request` in place.

    Covers the required components, `content-type` when present, and `extra_headers`.

    The body must already be in memory (`request.read()` is called); streaming uploads
    cannot be signed because the digest covers every byte.
    """
    body = request.read()
    request.headers["content-digest"] = content_digest(body)
    covered = [h for h in DEFAULT_COVERED_HEADERS if h in request.headers]
    components = list(
        dict.fromkeys([*REQUIRED_COMPONENTS, *covered, *(h.lower() for h in extra_headers)])
    )
    values: dict[str, str] = {
        "@method": request.method.upper(),
        "@path": request.url.raw_path.split(b"?", 1)[0].decode("ascii"),
        "@query": query_component(request.url.query.decode("ascii")),
    }
    for name in components[3:]:
        values[name] = request.headers.get(name, "").strip()
    params = signature_params(
        components,
        created=int(time.time()) if created is None else created,
        key_id=key_id,
        nonce=nonce or secrets.token_urlsafe(24),
    )
    signature = compute_signature(signing_secret, signature_base(values, params))
    request.headers["signature-input"] = f"{LABEL}={params}"
    request.headers["signature"] = f"{LABEL}=:{base64.b64encode(signature).decode()}:"


class SignedRequestAuth(httpx.Auth):
    """httpx authentication that sends the API key and signs every request with it."""

    requires_request_body = True

    def __init__(self, api_key: str, signing_secret: str, extra_headers: Iterable[str] = ()):
        self._api_key = api_key
        self._key_id = api_key_id(api_key)
        self._secret = decode_signing_secret(signing_secret)
        self._extra_headers = tuple(extra_headers)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self._api_key
        sign_request(
            request,
            key_id=self._key_id,
            signing_secret=self._secret,
            extra_headers=self._extra_headers,
        )
        yield request
