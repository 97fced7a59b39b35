"""The declarative provider document (`assay-provider/v1`): what a provider answers for,
how to ask it, and how its answer becomes fields, a 0-100 score and evidence.

A document is data an organisation uploads, so everything in it is bounded: the URL is a
base plus path segments (each encoded, never spliced into the host), placeholders are a
closed set, expressions are CEL under the engine's size limits.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assay.indicators.schemas import IndicatorType

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
# What a template may contain: literal text and these placeholders, nothing else.
PLACEHOLDERS = frozenset({"indicator", "indicator_b64url", "type"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
FieldType = Literal["number", "integer", "string", "boolean", "list"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_template(text: str) -> str:
    """`text` if its placeholders are all known; raises ValueError naming the first that is not."""
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            msg = f"unknown placeholder {{{name}}}; use {known}"
            raise ValueError(msg)
    return text


class MappedField(_Strict):
    """A normalised field read from the response at a dotted path (`data.attributes.x`;
    a number selects a list item: `urls.0.threat`)."""

    path: str = Field(
        min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$"
    )
    type: FieldType = "number"
    # The value when the answer has nothing at `path` (null otherwise).
    default: str | float | bool | None = None


class Scale(_Strict):
    """How the score expression's raw value becomes 0-100.

    `clamp` keeps it, bounded to [0, 100]. `saturating` maps a count of independent
    signals so each adds less than the one before: ``100 * (1 - 2 ** (-raw / half_at))``
    (half the scale at `half_at`).
    """

    kind: Literal["clamp", "saturating"] = "clamp"
    half_at: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _parameters(self) -> Scale:
        if (self.kind == "saturating") != (self.half_at is not None):
            raise ValueError("`half_at` goes with kind saturating, and only with it")
        return self

    def apply(self, raw: float) -> float:
        if self.kind == "saturating" and self.half_at is not None:
            raw = 100.0 * (1.0 - math.pow(2.0, -max(raw, 0.0) / self.half_at))
        return min(100.0, max(0.0, raw))


class RequestTemplate(_Strict):
    """How to ask about indicators of `types`, and how to read the answer."""

    types: list[IndicatorType] = Field(min_length=1)
    method: Literal["GET", "POST"] = "GET"
    # Appended to the provider's base URL, one encoded segment each.
    path: list[str] = Field(default_factory=list, max_length=10)
    query: dict[str, str] = Field(default_factory=dict, max_length=20)
    # Sent as application/x-www-form-urlencoded (POST only).
    form: dict[str, str] = Field(default_factory=dict, max_length=20)
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    # Statuses meaning "the provider knows nothing about it" (no opinion, not an error).
    no_data_statuses: list[int] = Field(default_factory=lambda: [404], max_length=10)
    fields: dict[str, MappedField] = Field(min_length=1, max_length=40)
    # CEL over `fields`: the raw score before `scale`. A field the answer lacks is null,
    # and an expression reading a null field gives no score (the result is an error).
    score: str = Field(min_length=1, max_length=1000)
    scale: Scale = Field(default_factory=Scale)
    # CEL bool over `fields`: true when the answer means "no data" though the status is 200.
    no_data_when: str | None = Field(None, max_length=500)
    # Text with {field} placeholders naming mapped fields.
    evidence: str = Field("", max_length=300)

    @field_validator("path")
    @classmethod
    def _segments(cls, segments: list[str]) -> list[str]:
        for index, segment in enumerate(segments):
            # An empty last segment gives the URL a trailing slash, as some APIs need.
            if (not segment and index != len(segments) - 1) or len(segment) > 200:
                raise ValueError("a path segment is 1 to 200 characters (the last may be empty)")
            check_template(segment)
        return segments

    @field_validator("query", "form")
    @classmethod
    def _values(cls, values: dict[str, str]) -> dict[str, str]:
        for value in values.values():
            check_template(value)
        return values

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name) or any(c in value for c in "\r\n"):
                raise ValueError(f"header {name!r} is not a plain header")
            if _PLACEHOLDER.search(value):
                raise ValueError("headers carry no placeholders; the indicator goes in the URL")
        return headers

    @field_validator("fields")
    @classmethod
    def _field_names(cls, fields: dict[str, MappedField]) -> dict[str, MappedField]:
        for name in fields:
            if not re.fullmatch(FIELD_PATTERN, name):
                raise ValueError(f"field name {name!r} must match {FIELD_PATTERN}")
        return fields

    @model_validator(mode="after")
    def _form_with_post(self) -> RequestTemplate:
        if self.form and self.method != "POST":
            raise ValueError("`form` is sent with POST only")
        for name in _PLACEHOLDER.findall(self.evidence):
            if name not in self.fields:
                raise ValueError(f"evidence names {{{name}}}, which is not a mapped field")
        return self


class Credential(_Strict):
    """Where the organisation's API key goes: a header or a query parameter."""

    location: Literal["header", "query", "form"] = Field(alias="in")
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    required: bool = True


class Levels(_Strict):
    """Score thresholds (0-100) of the levels, Cortex-style: safe below `suspicious`."""

    suspicious: float = Field(30, ge=0, le=100)
    malicious: float = Field(70, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Levels:
        if self.suspicious > self.malicious:
            raise ValueError("the suspicious threshold is above the malicious one")
        return self


class ProviderDefinition(_Strict):
    """A whole `assay-provider/v1` document."""

    format: Literal["assay-provider/v1"]
    name: str = Field(pattern=NAME_PATTERN)
    title: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    base_url: str = Field(min_length=8, max_length=500)
    # Link out for a reader, with the same placeholders (the indicator is encoded).
    link: str | None = Field(None, max_length=500)
    credential: Credential | None = None
    # Either request templates, or the name of an installed Python plugin (plugins.py).
    requests: list[RequestTemplate] = Field(default_factory=list, max_length=10)
    plugin: str | None = Field(None, pattern=r"^[a-z][a-z0-9_.-]{0,63}$")
    connect_timeout_seconds: float = Field(3.0, gt=0, le=30)
    timeout_seconds: float = Field(8.0, gt=0, le=60)
    # Retried (within the lookup's deadline) after a connection failure or a 5xx; only
    # when the call is idempotent (GET, or a POST the document declares idempotent).
    retries: int = Field(1, ge=0, le=3)
    idempotent: bool | None = None
    # `limits` notation; the provider's own quota, shared by every process.
    rate_limit: str | None = Field(None, max_length=100)
    # Seconds an answer is reused, per indicator type; defaults per type otherwise.
    cache_ttl_seconds: dict[IndicatorType, int] = Field(default_factory=dict)
    levels: Levels = Field(default_factory=Levels)

    @field_validator("link")
    @classmethod
    def _link(cls, link: str | None) -> str | None:
        return check_template(link) if link is not None else None

    @field_validator("cache_ttl_seconds")
    @classmethod
    def _ttls(cls, ttls: dict[IndicatorType, int]) -> dict[IndicatorType, int]:
        for ttl in ttls.values():
            if not 0 <= ttl <= 30 * 24 * 3600:
                raise ValueError("a cache time to live is 0 to 30 days, in seconds")
        return ttls

    @model_validator(mode="after")
    def _one_request_per_type(self) -> ProviderDefinition:
        if (self.plugin is None) == (not self.requests):
            raise ValueError("give `requests` or a `plugin`, not both and not neither")
        seen: set[IndicatorType] = set()
        for template in self.requests:
            for kind in template.types:
                if kind in seen:
                    raise ValueError(f"two requests answer for {kind}; give each type one")
                seen.add(kind)
        in_form = self.credential is not None and self.credential.location == "form"
        if in_form and any(t.method != "POST" for t in self.requests):
            raise ValueError("a credential `in: form` needs every request to be a POST")
        return self

    @property
    def supports(self) -> tuple[IndicatorType, ...]:
        return tuple(kind for template in self.requests for kind in template.types)

    def is_idempotent(self, template: RequestTemplate) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return template.method == "GET"


def definition_problems(exc: Any) -> list[dict[str, Any]]:
    """A pydantic ValidationError as the problem list our 422s carry."""
    return [
        {
            "field": ".".join(str(part) for part in error["loc"]) or "definition",
            "code": error["type"],
            "message": error["msg"],
        }
        for error in exc.errors(include_url=False, include_input=False)
    ]
