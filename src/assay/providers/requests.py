"""A provider's HTTP request for one indicator, built from its template.

The indicator only ever lands in an encoded path segment, a query value or a form
value: it cannot change the host, add a path level, or start a query or fragment.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx

from assay.indicators.schemas import Indicator
from assay.providers.definition import ProviderDefinition, RequestTemplate

_PLACEHOLDER = re.compile(r"\{(indicator|indicator_b64url|type)\}")


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None


def placeholder_values(indicator: Indicator) -> dict[str, str]:
    # VirusTotal names a URL by its unpadded URL-safe base64.
    b64 = base64.urlsafe_b64encode(indicator.value.encode()).decode().rstrip("=")
    return {"indicator": indicator.value, "indicator_b64url": b64, "type": str(indicator.type)}


def render(template: str, values: dict[str, str], *, encode: bool = False) -> str:
    """`template` with its placeholders filled (percent-encoded completely if `encode`)."""

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return quote(value, safe="") if encode else value

    return _PLACEHOLDER.sub(fill, template)


def build_request(
    definition: ProviderDefinition,
    template: RequestTemplate,
    indicator: Indicator,
    *,
    base_url: str,
    credential: str | None,
) -> ProviderRequest:
    values = placeholder_values(indicator)
    base = httpx.URL(base_url)
    segments = [quote(render(s, values), safe="") for s in template.path]
    path = base.raw_path.split(b"?", 1)[0].decode("ascii").rstrip("/")
    if segments:
        path = path + "/" + "/".join(segments)
    query = {name: render(value, values) for name, value in template.query.items()}
    form = {name: render(value, values) for name, value in template.form.items()}
    headers = dict(template.headers)
    spec = definition.credential
    if spec is not None and credential is not None:
        if spec.location == "header":
            headers[spec.name] = credential
        elif spec.location == "query":
            query[spec.name] = credential
        else:
            form[spec.name] = credential
    url = base.copy_with(raw_path=path.encode("ascii"))
    if query:
        url = url.copy_with(query=urlencode(query).encode("ascii"))
    content = None
    if template.method == "POST":
        content = urlencode(form).encode("ascii")
        headers["content-type"] = "application/x-www-form-urlencoded"
    return ProviderRequest(template.method, str(url), headers, content)


def link_for(definition: ProviderDefinition, indicator: Indicator) -> str | None:
    if definition.link is None:
        return None
    return render(definition.link, placeholder_values(indicator), encode=True)
