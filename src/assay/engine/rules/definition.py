"""The rules document: weighted scoring rules over input fields (see docs/models.md, "Rules").

This module parses the document's shape; `assay.engine.rules.model` checks it against an
input schema and compiles it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cap(_Strict):
    """Bounds on one rule's contribution."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Cap:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if any(b is not None and not math.isfinite(b) for b in (self.min, self.max)):
            raise ValueError("cap bounds must be finite")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("cap min is above cap max")
        return self


class RuleSpec(_Strict):
    """One rule: `points` when a condition holds, or `weight` x a numeric CEL `value`."""

    id: str = Field(pattern=RULE_ID_PATTERN)
    description: str | None = Field(None, max_length=500)
    # A CEL string or a structured condition; checked against the schema at compile time.
    when: Any = None
    points: float | None = None
    value: str | None = None
    weight: float | None = None
    cap: Cap | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> RuleSpec:
        if (self.points is None) == (self.value is None):
            raise ValueError("give exactly one of `points` (with `when`) or `value`")
        if self.points is not None:
            if self.when is None:
                raise ValueError("a `points` rule needs a `when` condition")
            if self.weight is not None or self.cap is not None:
                raise ValueError("`weight` and `cap` apply to `value` rules; give the points")
            if not math.isfinite(self.points):
                raise ValueError("points must be finite")
        if self.weight is not None and not math.isfinite(self.weight):
            raise ValueError("weight must be finite")
        return self


class Combination(_Strict):
    """How the sum of contributions becomes a score in [0, 1]."""

    method: Literal["linear", "logistic", "weighted_mean"] = "linear"
    min_points: float | None = None
    max_points: float | None = None
    midpoint: float | None = None
    scale: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _parameters(self) -> Combination:
        if self.method == "weighted_mean":
            # Only the rules that apply carry weight: nothing to declare.
            given = (self.min_points, self.max_points, self.midpoint, self.scale)
            if any(value is not None for value in given):
                raise ValueError("the weighted_mean combination takes no parameters")
            return self
        if self.method == "logistic":
            if self.midpoint is None or self.scale is None:
                raise ValueError("logistic combination needs `midpoint` and `scale`")
            if self.min_points is not None or self.max_points is not None:
                raise ValueError("min_points/max_points apply to the linear combination")
        else:
            if self.midpoint is not None or self.scale is not None:
                raise ValueError("midpoint/scale apply to the logistic combination")
            if (
                self.min_points is not None
                and self.max_points is not None
                and self.min_points >= self.max_points
            ):
                raise ValueError("min_points must be below max_points")
        return self


class RulesDefinition(_Strict):
    """The whole rules document."""

    description: str | None = Field(None, max_length=2000)
    combine: Combination = Field(default_factory=Combination)
    rules: list[RuleSpec] = Field(min_length=1, max_length=1000)
