"""What scoring one record gives: a `PredictionResult`, or a `RowError` naming every problem."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assay.engine.explanations import Explanation


class ErrorCode:
    """Stable codes in `FieldError.code`; clients may match on them."""

    REQUIRED = "required"
    TYPE = "type"
    NOT_FINITE = "not_finite"
    MINIMUM = "minimum"
    MAXIMUM = "maximum"
    OUT_OF_RANGE = "out_of_range"
    ENUM = "enum"
    PATTERN = "pattern"
    MIN_LENGTH = "min_length"
    MAX_LENGTH = "max_length"
    UNKNOWN_FIELD = "unknown_field"
    DERIVED_ONLY = "derived_only"
    DERIVATION_FAILED = "derivation_failed"
    INCONSISTENT = "inconsistent"
    CROSS_FIELD = "cross_field"
    RULE_FAILED = "rule_failed"
    NO_EVIDENCE = "no_evidence"
    SCORE_NOT_FINITE = "score_not_finite"
    SCORING_FAILED = "scoring_failed"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule: the field (None for the record as a whole), a code and a message.

    Messages state the rule, never the submitted value, which may be personal data.
    """

    field: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class RowError:
    """A record that was not scored, with every reason found."""

    index: int
    errors: tuple[FieldError, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "errors": [e.as_dict() for e in self.errors]}

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.field for e in self.errors if e.field is not None))


@dataclass(frozen=True, slots=True)
class ValidatedRecord:
    """A record that passed its schema: typed values with defaults and derived fields."""

    index: int
    values: Mapping[str, Any]
    derived: tuple[str, ...]

    def canonical_json(self) -> str:
        """Deterministic JSON of the validated values, for cache keys and records."""
        return json.dumps(self.values, sort_keys=True, separators=(",", ":"), allow_nan=False)

    def derived_values(self) -> dict[str, Any]:
        return {name: self.values[name] for name in self.derived}


@dataclass(frozen=True, slots=True)
class PredictionResult:
    """One scored record."""

    index: int
    score: float
    label: str | None
    risk: str | None
    explanation: Explanation | None
    derived: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "score": self.score,
            "label": self.label,
            "risk": self.risk,
            "derived": dict(self.derived),
            "explanation": None if self.explanation is None else self.explanation.as_dict(),
        }
