"""Checking signed requests from API keys marked "signing required" (ADR 0004).

The format is the RFC 9421 subset described in `assay.client.signing`: HMAC-SHA256 over
`@method`, `@path`, `@query` and `content-digest` (plus any header fields the client
chose to cover), with `created`, `nonce` and `keyid` parameters. A signature is accepted
once, within five minutes either side of the server's clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request

from assay.api_keys.models import signing_secret_aad as api_key_signing_secret_aad
from assay.auth.authenticator import NotAuthenticated
from assay.auth.context import IdentityContext
from assay.client.signing import (
    ALGORITHM,
    REQUIRED_COMPONENTS,
    compute_signature,
    query_component,
    signature_base,
)
from assay.core.cache import CACHE_ERRORS
from assay.core.crypto import DecryptionError
from assay.core.errors import DependencyUnavailable
from assay.core.principal import OrgPrincipal
from assay.http.body_digest import BODY_DIGEST_STATE_KEY, BodyDigest

WINDOW_SECONDS = 300
# The server clock the window is measured against; a module attribute so tests can hold it
# still instead of racing the wall clock across a second boundary.
clock: Callable[[], float] = time.time


VERIFIED_STATE_KEY = "signature_verified"


_SF_KEY = r"[a-z*][a-z0-9_\-.*]*"


_SIGNATURE_INPUT = re.compile(
    rf'^\s*({_SF_KEY})=\(((?:"[a-z0-9@_\-.]+"(?: "[a-z0-9@_\-.]+")*)?)\)'
    rf'((?:;{_SF_KEY}=(?:"[\x20-\x21\x23-\x5b\x5d-\x7e]*"|-?\d{{1,15}}))*)\s*$'
)


_PARAM = re.compile(rf';({_SF_KEY})=("[^"]*"|-?\d+)')


_SIGNATURE = re.compile(rf"^\s*({_SF_KEY})=:([A-Za-z0-9+/]+={{0,2}}):\s*$")


_NONCE = re.compile(r"^[A-Za-z0-9_\-+/=]{16,128}$")


class NonceStoreUnavailable(DependencyUnavailable):
    def __init__(self) -> None:
        super().__init__(
            "Signed requests cannot be checked for replay right now (the nonce store is "
            "unreachable); retry shortly.",
            headers={"Retry-After": "1"},
        )


class SignatureRejected(NotAuthenticated):
    title = "Request signature rejected"

    def __init__(self, reason: str, explanation: str) -> None:
        super().__init__(
            f"Request signature rejected ({reason}): {explanation}", extra={"reason": reason}
        )


def _parse(request: Request) -> tuple[list[str], dict[str, Any], str, bytes]:
    signature_input = request.headers.get("signature-input")
    signature = request.headers.get("signature")
    if not signature_input or not signature:
        raise SignatureRejected(
            "unsigned", "this API key must sign every request (Signature-Input, Signature)."
        )
    parsed_input = _SIGNATURE_INPUT.match(signature_input)
    parsed_signature = _SIGNATURE.match(signature)
    if parsed_input is None or parsed_signature is None:
        raise SignatureRejected(
            "malformed", "Signature-Input and Signature must each hold one RFC 9421 signature."
        )
    label, inner, raw_params = parsed_input.groups()
    if parsed_signature.group(1) != label:
        raise SignatureRejected("malformed", "Signature and Signature-Input labels differ.")
    components = [name.strip('"') for name in inner.split(" ")] if inner else []
    params: dict[str, Any] = {}
    for name, value in _PARAM.findall(raw_params):
        params[name] = value.strip('"') if value.startswith('"') else int(value)
    params_text = f"({inner}){raw_params}"
    try:
        mac = base64.b64decode(parsed_signature.group(2), validate=True)
    except ValueError:
        raise SignatureRejected("malformed", "the Signature value is not base64.") from None
    return components, params | {"_text": params_text}, label, mac


def _component_values(request: Request, components: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    for name in components:
        if name == "@method":
            values[name] = request.method.upper()
        elif name == "@path":
            values[name] = raw_path.split(b"?", 1)[0].decode("latin-1")
        elif name == "@query":
            values[name] = query_component(request.scope.get("query_string", b"").decode("latin-1"))
        elif name.startswith("@"):
            raise SignatureRejected("malformed", f"the component '{name}' is not supported.")
        else:
            present = request.headers.getlist(name)
            if not present:
                raise SignatureRejected("malformed", f"the covered header '{name}' is missing.")
            values[name] = ", ".join(value.strip() for value in present)
    return values


async def _body_digest(request: Request) -> bytes:
    running: BodyDigest | None = request.scope.get("state", {}).get(BODY_DIGEST_STATE_KEY)
    if running is None:
        # Only without BodyDigestMiddleware (it is part of the HTTP stack): hash what the
        # request object holds, reading it now; Starlette keeps it for the route.
        return hashlib.sha256(await request.body()).digest()
    if not running.complete:
        # Nothing has read the body yet; read it through the hashing receive. Starlette
        # keeps the bytes, so the route still parses them.
        await request.body()
    return running.digest()


async def verify_signed_request(
    request: Request, identity: IdentityContext, principal: OrgPrincipal
) -> None:
    """Raise SignatureRejected unless `request` carries a fresh, valid signature by the key."""
    state = request.scope.setdefault("state", {})
    if state.get(VERIFIED_STATE_KEY):
        return  # authenticate ran twice for one request; the nonce is already spent
    components, params, _label, mac = _parse(request)
    missing = [name for name in REQUIRED_COMPONENTS if name not in components]
    if missing:
        raise SignatureRejected("incomplete", f"the signature must cover {', '.join(missing)}.")
    if params.get("alg", ALGORITHM) != ALGORITHM:
        raise SignatureRejected("malformed", f"the only algorithm accepted is {ALGORITHM}.")
    if params.get("keyid") != principal.key_id:
        raise SignatureRejected("wrong-key", "keyid does not name the API key sent.")
    created = params.get("created")
    if not isinstance(created, int) or abs(clock() - created) > WINDOW_SECONDS:
        raise SignatureRejected(
            "skewed", f"'created' must be within {WINDOW_SECONDS} seconds of the server clock."
        )
    nonce = params.get("nonce")
    if not isinstance(nonce, str) or _NONCE.match(nonce) is None:
        raise SignatureRejected("malformed", "'nonce' must be 16 to 128 base64 characters.")

    values = _component_values(request, components)
    expected_digest = "sha-256=:" + base64.b64encode(await _body_digest(request)).decode() + ":"
    if not hmac.compare_digest(values["content-digest"].encode(), expected_digest.encode()):
        raise SignatureRejected("digest-mismatch", "Content-Digest does not match the body.")

    secret = await _signing_secret(identity, principal)
    base = signature_base(values, params["_text"])
    if not hmac.compare_digest(compute_signature(secret, base), mac):
        raise SignatureRejected(
            "bad-signature",
            "the signature does not match the request (method, path, query, "
            "headers or body changed, or the wrong secret).",
        )
    # Claimed only after the signature is checked, so forged requests cannot burn nonces.
    try:
        claimed = await identity.cache.set_if_absent(
            f"assay:sig:nonce:{principal.key_id}:{nonce}", b"1", float(2 * WINDOW_SECONDS + 1)
        )
    except CACHE_ERRORS as exc:
        # Without the nonce store a replay cannot be told apart: refuse, retryably.
        identity.authenticator.cache_failed("nonce", exc)
        raise NonceStoreUnavailable from None
    if not claimed:
        raise SignatureRejected("replayed", "this signature has been used before.")
    state[VERIFIED_STATE_KEY] = True


async def _signing_secret(identity: IdentityContext, principal: OrgPrincipal) -> bytes:
    assert principal.key_id is not None  # noqa: S101 - API-key principals have a key id
    sealed = await identity.authenticator.signing_secret_ciphertext(principal.key_id)
    if sealed is None:
        raise SignatureRejected("no-secret", "this key has no signing secret; create a new key.")
    try:
        return identity.keyring.decrypt(sealed, signing_secret_aad(principal.org_id, principal.id))
    except DecryptionError:
        raise SignatureRejected("no-secret", "this key's signing secret cannot be read.") from None


# The recipe lives with the table (assay.core.sealed); re-exported for the API keys.
signing_secret_aad = api_key_signing_secret_aad
