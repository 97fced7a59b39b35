"""A stand-in for the VirusTotal API v3 object lookups: IP addresses, domains, URLs, files.

Answers are shaped as VirusTotal's: `{"data": {"id", "type", "links", "attributes"}}`, and
errors as `{"error": {"code", "message"}}` with VirusTotal's error codes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assay.mock_providers.dataset import Behaviour, Indicator, Kind, normalise
from assay.mock_providers.state import Credential, MockState

PREFIX = "/virustotal/api/v3"
CREDENTIAL_HEADER = "x-apikey"

# Collection in the path, and the object type in the answer.
_COLLECTIONS = {
    Kind.IP: ("ip_addresses", "ip_address"),
    Kind.DOMAIN: ("domains", "domain"),
    Kind.URL: ("urls", "url"),
    Kind.FILE: ("files", "file"),
}
_DESCRIBED = {Kind.IP: "IP address", Kind.DOMAIN: "Domain", Kind.URL: "URL", Kind.FILE: "File"}


def url_identifier(url: str) -> str:
    """VirusTotal's identifier of URL in a path: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def decode_url_identifier(identifier: str) -> str | None:
    """The URL an identifier names, or `None` when it is not URL-safe base64 of one."""
    try:
        decoded = base64.urlsafe_b64decode(identifier + "=" * (-len(identifier) % 4))
        url = decoded.decode()
    except (binascii.Error, ValueError):
        return None
    return url if normalise(Kind.URL, url) is not None else None


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _object(request: Request, indicator: Indicator, collection: str, type_name: str) -> Response:
    attributes: dict[str, Any] = {"tags": [], **(indicator.virustotal or {})}
    object_id = indicator.value
    if indicator.kind is Kind.URL:
        # A URL object's id is the SHA-256 of the URL; the base64 form only addresses it.
        object_id = hashlib.sha256(indicator.value.encode()).hexdigest()
        attributes["url"] = indicator.value
    elif indicator.kind is Kind.FILE:
        attributes.update(sha256=indicator.value, **indicator.hashes)
    base = f"{request.url.scheme}://{request.url.netloc}{PREFIX}"
    return JSONResponse(
        {
            "data": {
                "id": object_id,
                "type": type_name,
                "links": {"self": f"{base}/{collection}/{object_id}"},
                "attributes": attributes,
            }
        }
    )


def _unauthenticated(credential: Credential) -> Response:
    if credential is Credential.MISSING:
        return error(401, "AuthenticationRequiredError", "X-Apikey header is missing")
    return error(401, "WrongCredentialsError", "Wrong API key")


def _invalid(kind: Kind, raw: str) -> Response:
    if kind is Kind.URL:
        # VirusTotal does not tell a malformed URL id from an unknown one.
        return error(404, "NotFoundError", f'URL "{raw}" not found')
    return error(400, "InvalidArgumentError", f'"{raw}" is not a valid {kind} identifier')


def _refusal(state: MockState, behaviour: Behaviour) -> Response | None:
    """The answer of a failing or rate-limited indicator; `None` for the others."""
    if behaviour is Behaviour.FAILING:
        return error(500, "TransientError", "Transient server error (mock: failing indicator)")
    if behaviour is Behaviour.RATE_LIMITED:
        return error(
            429,
            "QuotaExceededError",
            "Quota exceeded (mock: rate-limited indicator)",
            headers={"Retry-After": str(state.dataset.retry_after_seconds)},
        )
    return None


def _lookup(state: MockState, kind: Kind) -> Callable[[Request], Awaitable[Response]]:
    collection, type_name = _COLLECTIONS[kind]

    async def lookup(request: Request) -> Response:
        raw = str(request.path_params["identifier"])
        asked = decode_url_identifier(raw) if kind is Kind.URL else normalise(kind, raw)
        credential = await state.receive(
            request,
            provider="virustotal",
            credential_header=CREDENTIAL_HEADER,
            indicator=asked or raw,
        )
        if credential is not Credential.ACCEPTED:
            return _unauthenticated(credential)
        if asked is None:
            return _invalid(kind, raw)
        indicator = state.dataset.find(kind, asked)
        refusal = _refusal(state, await state.behave(indicator))
        if refusal is not None:
            return refusal
        if indicator is None or indicator.virustotal is None:
            return error(404, "NotFoundError", f'{_DESCRIBED[kind]} "{raw}" not found')
        return _object(request, indicator, collection, type_name)

    return lookup


def routes(state: MockState) -> list[Route]:
    """The VirusTotal routes, relative to `PREFIX`."""
    return [
        Route(f"/{collection}/{{identifier}}", _lookup(state, kind), methods=["GET"])
        for kind, (collection, _) in _COLLECTIONS.items()
    ]
