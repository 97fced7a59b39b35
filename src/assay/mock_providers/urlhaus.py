"""A stand-in for the URLhaus API v1 queries: URL, host and payload information.

URLhaus answers a query with HTTP 200 and a `query_status` (`ok`, `no_results`,
`invalid_url`...); a missing Auth-Key is a 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assay.mock_providers.dataset import Behaviour, Indicator, Kind
from assay.mock_providers.state import Credential, MockState

PREFIX = "/urlhaus/v1"
CREDENTIAL_HEADER = "Auth-Key"
REFERENCE_BASE = "https://urlhaus.abuse.ch"
DOWNLOAD_BASE = "https://urlhaus-api.abuse.ch/v1/download"

# A query's form, read: the indicator it names (None: not in the data set or invalid), the
# query_status to answer when the form is invalid, and the value asked about.
Query = tuple[Indicator | None, str | None, str]


def _status(
    query_status: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse({"query_status": query_status}, status, headers=headers)


def _url_reference(url_id: object) -> str:
    return f"{REFERENCE_BASE}/url/{url_id}/"


def _download(sha256: object) -> str | None:
    return f"{DOWNLOAD_BASE}/{sha256}/" if sha256 else None


def _url_answer(indicator: Indicator, fields: dict[str, Any]) -> dict[str, Any]:
    payloads = [
        {
            "urlhaus_download": _download(payload.get("response_sha256")),
            "virustotal": None,
            "imphash": None,
            "ssdeep": None,
            "tlsh": None,
            **payload,
        }
        for payload in fields.get("payloads", [])
    ]
    return {
        "id": str(fields["id"]),
        "urlhaus_reference": _url_reference(fields["id"]),
        "url": indicator.value,
        "url_status": fields["url_status"],
        "host": urlsplit(indicator.value).hostname,
        "date_added": fields.get("date_added"),
        "last_online": fields.get("last_online"),
        "threat": fields["threat"],
        "blacklists": fields.get("blacklists", {}),
        "reporter": fields.get("reporter"),
        "larted": fields.get("larted", "false"),
        "takedown_time_seconds": fields.get("takedown_time_seconds"),
        "tags": fields.get("tags", []),
        "payloads": payloads,
    }


def _host_answer(state: MockState, indicator: Indicator, fields: dict[str, Any]) -> dict[str, Any]:
    urls = []
    for url in state.dataset.urls_on_host(indicator.value):
        known = _url_answer(url, dict(url.urlhaus or {}))
        urls.append({name: known[name] for name in _HOST_URL_FIELDS})
    return {
        "urlhaus_reference": f"{REFERENCE_BASE}/host/{indicator.value}/",
        "host": indicator.value,
        "firstseen": fields["firstseen"],
        "url_count": str(len(urls)),
        "blacklists": fields.get("blacklists", {}),
        "urls": urls,
    }


_HOST_URL_FIELDS = (
    "id",
    "urlhaus_reference",
    "url",
    "url_status",
    "date_added",
    "threat",
    "reporter",
    "larted",
    "takedown_time_seconds",
    "tags",
)


def _payload_answer(indicator: Indicator, fields: dict[str, Any]) -> dict[str, Any]:
    urls = list(fields["urls"])
    return {
        "md5_hash": indicator.hashes.get("md5"),
        "sha256_hash": indicator.value,
        "file_type": fields["file_type"],
        "file_size": fields.get("file_size"),
        "signature": fields.get("signature"),
        "firstseen": fields.get("firstseen"),
        "lastseen": fields.get("lastseen"),
        "url_count": str(len(urls)),
        "urlhaus_download": _download(indicator.value),
        "virustotal": None,
        "imphash": None,
        "ssdeep": None,
        "tlsh": None,
        "urls": urls,
    }


def _url_query(state: MockState, form: dict[str, str]) -> Query:
    url = form.get("url", "").strip()
    if not url or urlsplit(url).scheme not in {"http", "https"}:
        return None, "invalid_url", url
    return state.dataset.find(Kind.URL, url), None, url


def _host_query(state: MockState, form: dict[str, str]) -> Query:
    host = form.get("host", "").strip()
    if not host or "/" in host:
        return None, "invalid_host", host
    found = state.dataset.find(Kind.IP, host) or state.dataset.find(Kind.DOMAIN, host)
    return found, None, host


def _payload_query(state: MockState, form: dict[str, str]) -> Query:
    for name, length in (("sha256_hash", 64), ("md5_hash", 32)):
        value = form.get(name, "").strip().lower()
        if not value:
            continue
        if len(value) != length or any(c not in "0123456789abcdef" for c in value):
            return None, f"invalid_{name}", value
        return state.dataset.find(Kind.FILE, value), None, value
    return None, "invalid_sha256_hash", ""


_QUERIES: dict[str, Callable[[MockState, dict[str, str]], Query]] = {
    "url": _url_query,
    "host": _host_query,
    "payload": _payload_query,
}


def _query(state: MockState, kind: str) -> Callable[[Request], Awaitable[Response]]:
    parse = _QUERIES[kind]

    async def query(request: Request) -> Response:
        async with request.form() as raw_form:
            form = {name: str(value) for name, value in raw_form.items()}
        indicator, invalid, asked = parse(state, form)
        credential = await state.receive(
            request,
            provider="urlhaus",
            credential_header=CREDENTIAL_HEADER,
            indicator=asked or None,
        )
        if credential is not Credential.ACCEPTED:
            return _status("unknown_auth_key", 401)
        if invalid is not None:
            return _status(invalid)
        behaviour = await state.behave(indicator)
        if behaviour is Behaviour.FAILING:
            return _status("internal_error", 500)
        if behaviour is Behaviour.RATE_LIMITED:
            headers = {"Retry-After": str(state.dataset.retry_after_seconds)}
            return _status("rate_limited", 429, headers)
        if indicator is None or indicator.urlhaus is None:
            return _status("no_results")
        fields = dict(indicator.urlhaus)
        if kind == "url":
            answer = _url_answer(indicator, fields)
        elif kind == "host":
            answer = _host_answer(state, indicator, fields)
        else:
            answer = _payload_answer(indicator, fields)
        return JSONResponse({"query_status": "ok", **answer})

    return query


def routes(state: MockState) -> list[Route]:
    """The URLhaus routes, relative to `PREFIX`."""
    return [Route(f"/{kind}/", _query(state, kind), methods=["POST"]) for kind in _QUERIES]
