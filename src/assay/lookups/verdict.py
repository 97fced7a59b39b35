"""From provider results to a verdict, through the organisation's verdict model.

Each provider's 0-100 score becomes the feature `<provider>_score` (null when it gave
no score: a timeout, an error, no data), and the model (a rules model combining them by
`weighted_mean`, as the threat-intelligence pack ships it) turns them into a score and
a verdict band. A provider whose score is null carries no weight, and its weight is
shared among those that answered: the explanation says how much each contributed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assay.engine.explanations import RulesExplanation
from assay.engine.results import PredictionResult, RowError
from assay.engine.rules.model import RulesModel
from assay.providers.service import ProviderResult, ProviderStatus

UNKNOWN = "unknown"


def feature_name(provider: str) -> str:
    return f"{provider.replace('-', '_')}_score"


def features(results: Sequence[ProviderResult], schema_fields: Sequence[str]) -> dict[str, Any]:
    """The model's input: a score per provider the model's schema names (null if none)."""
    known = set(schema_fields)
    row: dict[str, Any] = {name: None for name in known if name.endswith("_score")}
    for result in results:
        name = feature_name(result.provider)
        if name in known:
            row[name] = result.score if result.status is ProviderStatus.OK else None
    return row


def rule_weights(engine: object) -> dict[str, float]:
    """The declared weight of each rule of a rules model (rule id = provider feature)."""
    if not isinstance(engine, RulesModel):
        return {}
    return {
        rule.id: (1.0 if rule.weight is None else rule.weight) for rule in engine.definition.rules
    }


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str
    score: float | None  # 0-100
    redistributed: bool
    # Per provider: weight declared, weight after redistribution, contribution (0-100).
    shares: Mapping[str, dict[str, float | None]]
    errors: list[dict[str, Any]]


def read_verdict(
    outcome: PredictionResult | RowError,
    results: Sequence[ProviderResult],
    weights: Mapping[str, float],
) -> Verdict:
    if isinstance(outcome, RowError):
        return Verdict(UNKNOWN, None, False, {}, [e.as_dict() for e in outcome.errors])
    explanation = outcome.explanation
    shares: dict[str, dict[str, float | None]] = {}
    redistributed = False
    if isinstance(explanation, RulesExplanation):
        applied = explanation.max_points or 0.0
        fired = {rule.rule_id: rule.points for rule in explanation.fired}
        declared_total = sum(weights.values())
        for result in results:
            rule_id = result.provider  # the pack names each rule after its provider
            weight = weights.get(rule_id)
            if weight is None:
                continue
            points = fired.get(rule_id)
            effective = weight / applied if points is not None and applied > 0 else 0.0
            shares[result.provider] = {
                "weight": weight,
                "effective_weight": round(effective, 4),
                "contribution": (
                    round(100.0 * points / applied, 2) if points is not None and applied else None
                ),
            }
        redistributed = applied > 0 and abs(applied - declared_total) > 1e-9
    label = outcome.label or UNKNOWN
    return Verdict(label, round(outcome.score * 100.0, 2), redistributed, shares, [])
