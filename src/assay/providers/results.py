"""What one provider said about one indicator, and how its answer is read."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from assay.engine.expressions import ExpressionError
from assay.providers.compiled import CompiledRequest
from assay.providers.definition import FieldType, Levels


class ProviderStatus(StrEnum):
    OK = "ok"  # answered; score and evidence are set
    NO_DATA = "no_data"  # answered that it knows nothing: no opinion, not an error
    TIMEOUT = "timeout"  # no complete answer within its timeout or the lookup's deadline
    ERROR = "error"  # refused, unreachable, a server error or an unreadable answer
    CIRCUIT_OPEN = "circuit_open"  # failing lately: not called until its cool-down ends
    RATE_LIMITED = "rate_limited"  # its quota is spent, or it answered 429: not called
    UNSUPPORTED = "unsupported"  # it does not answer for this indicator type
    NOT_CONFIGURED = "not_configured"  # it needs a credential the organisation has not set


class Level(StrEnum):
    """Cortex's taxonomy levels."""

    INFO = "info"
    SAFE = "safe"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"


# Statuses an answer came with: these are cached; the others are about the call.
ANSWERED = frozenset({ProviderStatus.OK, ProviderStatus.NO_DATA})


@dataclass(frozen=True, slots=True)
class ProviderResult:
    provider: str
    status: ProviderStatus
    latency_ms: float = 0.0
    score: float | None = None  # 0-100 when status is ok
    level: Level = Level.INFO
    evidence: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    detail: str = ""  # why, when not ok
    cached: bool = False
    age_seconds: float | None = None  # of a cached answer
    fetched_at: float | None = None  # epoch seconds the answer was received

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.as_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ProviderResult:
        data = json.loads(raw)
        data["status"] = ProviderStatus(data["status"])
        data["level"] = Level(data["level"])
        return cls(**data)


def level_of(score: float, levels: Levels) -> Level:
    if score >= levels.malicious:
        return Level.MALICIOUS
    if score >= levels.suspicious:
        return Level.SUSPICIOUS
    return Level.SAFE


_MISSING = object()


def _at(document: Any, path: str) -> Any:
    node = document
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


_CHECKS: dict[str, Any] = {
    "boolean": lambda v: v if isinstance(v, bool) else None,
    "integer": lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None,
    "number": lambda v: (
        float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
    ),
    "string": lambda v: v if isinstance(v, str) else None,
    "list": lambda v: v if isinstance(v, list) else None,
}


def _typed(value: Any, kind: FieldType) -> Any:
    """`value` if it has the field's type (ints are numbers too), else None."""
    if value is None or value is _MISSING:
        return None
    return _CHECKS[kind](value)


def read_fields(request: CompiledRequest, document: Any) -> dict[str, Any]:
    """The template's fields from a parsed answer; absent or mistyped ones take their
    default (null unless declared)."""
    fields: dict[str, Any] = {}
    for name, spec in request.template.fields.items():
        value = _typed(_at(document, spec.path), spec.type)
        fields[name] = spec.default if value is None else value
    return fields


_EVIDENCE = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def evidence_text(template: str, fields: dict[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        value = fields.get(match.group(1))
        if value is None:
            return "?"
        if isinstance(value, float) and value.is_integer():
            return f"{int(value):,}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    return " ".join(_EVIDENCE.sub(fill, template).split())


def score_answer(
    request: CompiledRequest, document: Any, levels: Levels
) -> tuple[ProviderStatus, float | None, Level, str, dict[str, Any], str]:
    """(status, score, level, evidence, fields, detail) of a parsed 2xx answer."""
    fields = read_fields(request, document)
    try:
        if request.no_data_when is not None and request.no_data_when.evaluate_bool(fields):
            return ProviderStatus.NO_DATA, None, Level.INFO, "", fields, ""
        raw = request.score.evaluate_number(fields)
    except ExpressionError as exc:
        detail = f"the answer does not fit the definition: {exc}"
        return ProviderStatus.ERROR, None, Level.INFO, "", fields, detail
    score = request.template.scale.apply(raw)
    evidence = evidence_text(request.template.evidence, fields)
    return ProviderStatus.OK, score, level_of(score, levels), evidence, fields, ""
