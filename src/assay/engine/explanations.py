"""Why a score is what it is: fired rules, feature contributions, ensemble components.

Every explanation is a frozen value with `as_dict()` giving plain JSON types, so a
prediction record can store it and an API can return it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class FiredRule:
    """A rule whose condition held, and the points it added after its cap."""

    rule_id: str
    points: float
    description: str | None = None
    capped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "points": self.points,
            "description": self.description,
            "capped": self.capped,
        }


@dataclass(frozen=True, slots=True)
class RulesExplanation:
    """The rules that fired; the score is `combination` applied to `total_points`."""

    fired: tuple[FiredRule, ...]
    total_points: float
    min_points: float | None
    max_points: float | None
    combination: str
    kind: Literal["rules"] = "rules"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "combination": self.combination,
            "total_points": self.total_points,
            "min_points": self.min_points,
            "max_points": self.max_points,
            "fired": [rule.as_dict() for rule in self.fired],
        }


@dataclass(frozen=True, slots=True)
class FeatureContribution:
    """One feature's value and its additive contribution in `FeatureExplanation.space`."""

    feature: str
    value: float
    contribution: float

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "value": self.value, "contribution": self.contribution}


@dataclass(frozen=True, slots=True)
class FeatureExplanation:
    """Per-feature contributions of an ML model, largest magnitude first.

    Contributions plus `bias` add up to the model's raw output in `space` (log-odds for
    binary classifiers), not to the probability. `contributions` is None for runtimes
    that cannot attribute (ONNX graphs, pipelines); `note` says why.
    """

    contributions: tuple[FeatureContribution, ...] | None
    bias: float | None
    space: str | None
    note: str | None = None
    kind: Literal["features"] = "features"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "space": self.space,
            "bias": self.bias,
            "contributions": None
            if self.contributions is None
            else [c.as_dict() for c in self.contributions],
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class ComponentScore:
    """One ensemble component: its score, the score after its caps, weight and share."""

    name: str
    score: float
    effective_score: float
    weight: float
    contribution: float
    explanation: Explanation

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "score": self.score,
            "effective_score": self.effective_score,
            "weight": self.weight,
            "contribution": self.contribution,
            "explanation": self.explanation.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class EnsembleExplanation:
    """Components whose contributions sum to the ensemble's score.

    `uncapped_score` is the weighted sum before any ceiling; when a ceiling applied,
    `ceiling` names it and every contribution was scaled by the same factor.
    """

    components: tuple[ComponentScore, ...]
    uncapped_score: float
    ceiling: str | None = None
    kind: Literal["ensemble"] = "ensemble"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "uncapped_score": self.uncapped_score,
            "ceiling": self.ceiling,
            "components": [c.as_dict() for c in self.components],
        }


@dataclass(frozen=True, slots=True)
class StoredExplanation:
    """An explanation read back from its `as_dict()` form (a cached prediction): it gives
    that same mapping again, so a served copy is indistinguishable from the original."""

    document: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return self.document


Explanation = RulesExplanation | FeatureExplanation | EnsembleExplanation | StoredExplanation
