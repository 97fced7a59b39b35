"""A stand-in for the AbuseIPDB API v2 `check` endpoint.

AbuseIPDB answers every address: one nobody reported has a score of 0 and no reports.
Errors are shaped as AbuseIPDB's: `{"errors": [{"detail", "status"}]}`.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assay.mock_providers.dataset import Behaviour, Kind, normalise
from assay.mock_providers.state import Credential, MockState

PREFIX = "/abuseipdb/api/v2"
CREDENTIAL_HEADER = "Key"

# What AbuseIPDB says of an address nobody reported.
_UNREPORTED: dict[str, Any] = {
    "isWhitelisted": False,
    "abuseConfidenceScore": 0,
    "countryCode": None,
    "usageType": None,
    "isp": None,
    "domain": None,
    "hostnames": [],
    "isTor": False,
    "totalReports": 0,
    "numDistinctUsers": 0,
    "lastReportedAt": None,
}


def error(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    parameter: str | None = None,
) -> Response:
    problem: dict[str, Any] = {"detail": detail, "status": status}
    if parameter is not None:
        problem["source"] = {"parameter": parameter}
    return JSONResponse({"errors": [problem]}, status, headers=headers)


def _max_age_problem(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 365:
        return "The max age in days must be between 1 and 365."
    return None


def _check(state: MockState) -> Callable[[Request], Awaitable[Response]]:
    # The daily quota's countdown, as the X-RateLimit-Remaining header reports it.
    answered = itertools.count(1)

    async def check(request: Request) -> Response:
        raw = request.query_params.get("ipAddress")
        address = normalise(Kind.IP, raw) if raw else None
        credential = await state.receive(
            request, provider="abuseipdb", credential_header=CREDENTIAL_HEADER, indicator=raw
        )
        if credential is not Credential.ACCEPTED:
            return error(
                401,
                "Authentication failed. Your API key is either missing, incorrect, or revoked.",
            )
        if address is None:
            detail = (
                "The ip address field is required."
                if not raw
                else "The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8)."
            )
            return error(422, detail, parameter="ipAddress")
        max_age_problem = _max_age_problem(request.query_params.get("maxAgeInDays"))
        if max_age_problem is not None:
            return error(422, max_age_problem, parameter="maxAgeInDays")
        indicator = state.dataset.find(Kind.IP, address)
        behaviour = await state.behave(indicator)
        limit = state.dataset.abuseipdb_daily_limit
        if behaviour is Behaviour.FAILING:
            return error(500, "The server had a problem (mock: failing indicator).")
        if behaviour is Behaviour.RATE_LIMITED:
            retry_after = state.dataset.retry_after_seconds
            return error(
                429,
                f"Daily rate limit of {limit} requests exceeded for this endpoint. "
                "See headers for additional details.",
                headers={
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + retry_after),
                },
            )
        parsed = ipaddress.ip_address(address)
        reported = indicator.abuseipdb if indicator is not None else None
        data = {
            "ipAddress": address,
            "isPublic": parsed.is_global,
            "ipVersion": parsed.version,
            **_UNREPORTED,
            **(reported or {}),
        }
        remaining = max(limit - next(answered), 0)
        return JSONResponse(
            {"data": data},
            headers={"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining)},
        )

    return check


def routes(state: MockState) -> list[Route]:
    """The AbuseIPDB routes, relative to `PREFIX`."""
    return [Route("/check", _check(state), methods=["GET"])]
