"""Rules models: declarative weighted scoring rules, compiled once, evaluated per record.

Each rule contributes to a sum of points:

- a *points* rule adds its `points` (negative allowed) when its `when` condition holds;
- a *value* rule adds ``weight x value`` (a numeric CEL expression, weight 1 by default),
  clamped into its `cap`, when its optional `when` holds and none of the fields its
  expressions read is null.

The sum becomes a score in [0, 1] by the document's `combine` method:

- ``linear`` (default): ``clip((total - min_points) / (max_points - min_points), 0, 1)``.
  Unless declared, ``min_points`` is the sum of every rule's lowest possible
  contribution below zero and ``max_points`` the sum of every highest one above zero
  (a rule that does not fire contributes 0). A value rule therefore needs a `cap`
  unless both bounds are declared.
- ``logistic``: ``1 / (1 + exp(-(total - midpoint) / scale))``.
- ``weighted_mean``: ``total / (sum of the weights of the rules that applied)``, for value
  rules whose values lie in [0, 1]. A rule whose fields are null does not apply, and its
  weight is shared among the others in proportion to theirs: evidence that is missing
  neither counts as clean nor as bad. A record to which no rule applies has no score
  (``no_evidence``).

The explanation lists every rule that fired with the points it added (after its cap),
the total and the bounds, so a reader can recompute the score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from assay.engine.base import EngineOutcome, EngineScore
from assay.engine.definition_errors import DefinitionProblems, join_path
from assay.engine.explanations import FiredRule, RulesExplanation
from assay.engine.expressions import (
    CompiledExpression,
    ExpressionDefinitionError,
    ExpressionError,
    compile_expression,
    expression_budget,
)
from assay.engine.results import ErrorCode, FieldError
from assay.engine.rules.conditions import Condition, compile_condition
from assay.engine.rules.definition import Combination, RulesDefinition, RuleSpec
from assay.engine.schema.definition import FieldSpec
from assay.engine.schema.input_schema import InputSchema

_DOCUMENT = "rules document"


@dataclass(frozen=True, slots=True)
class _Rule:
    rule_id: str
    description: str | None
    when: Condition | None
    points: float | None
    value: CompiledExpression | None
    weight: float
    cap_min: float | None
    cap_max: float | None

    def contribution(self, values: Mapping[str, Any]) -> tuple[float, bool] | None:
        """(points added, capped?) if the rule fires, else None. May raise ExpressionError."""
        if self.when is not None and not self.when(values):
            return None
        if self.points is not None:
            return self.points, False
        assert self.value is not None  # noqa: S101 - RuleSpec guarantees points or value
        if any(values.get(name) is None for name in self.value.variables):
            return None
        raw = self.weight * self.value.evaluate_number(values)
        points = raw
        if self.cap_min is not None and points < self.cap_min:
            points = self.cap_min
        if self.cap_max is not None and points > self.cap_max:
            points = self.cap_max
        return points, points != raw

    def bounds(self) -> tuple[float, float] | None:
        """Lowest and highest contribution, including 0 for not firing; None if unbounded."""
        if self.points is not None:
            return min(0.0, self.points), max(0.0, self.points)
        if self.cap_min is None or self.cap_max is None:
            return None
        return min(0.0, self.cap_min), max(0.0, self.cap_max)


class RulesModel:
    """A compiled rules document; a `ScoringEngine`. Immutable and thread-safe."""

    kind = "rules"

    def __init__(
        self,
        definition: RulesDefinition,
        rules: tuple[_Rule, ...],
        fields: Mapping[str, FieldSpec],
        points_range: tuple[float, float] | None,
    ) -> None:
        self.definition = definition
        self._rules = rules
        self._fields = dict(fields)
        combine = definition.combine
        self.method = combine.method
        # Linear combinations have a points range; logistic ones have midpoint and scale.
        self.min_points: float | None = points_range[0] if points_range else None
        self.max_points: float | None = points_range[1] if points_range else None
        self._low = self.min_points or 0.0
        self._span = (self.max_points or 1.0) - self._low
        self._midpoint = combine.midpoint or 0.0
        self._scale = combine.scale or 1.0
        if self.method == "linear":
            self._combination = f"linear: clip((total - {self._low:g}) / {self._span:g}, 0, 1)"
        elif self.method == "logistic":
            self._combination = (
                f"logistic: 1 / (1 + exp(-(total - {self._midpoint:g}) / {self._scale:g}))"
            )
        else:
            self._combination = (
                "weighted_mean: total / max_points, max_points being the weight of the rules"
                " that applied"
            )

    @property
    def fields(self) -> Mapping[str, FieldSpec]:
        return self._fields

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(rule.rule_id for rule in self._rules)

    def combine(self, total: float) -> float:
        """The score for a sum of points, per the document's combination."""
        if self.method == "linear":
            return min(1.0, max(0.0, (total - self._low) / self._span))
        # tanh form of the logistic: no overflow for any finite total.
        return 0.5 * (1.0 + math.tanh((total - self._midpoint) / (2.0 * self._scale)))

    def evaluate(self, values: Mapping[str, Any], *, explain: bool = True) -> EngineOutcome:
        """Score one validated record."""
        total = 0.0
        applied_weight = 0.0
        fired: list[FiredRule] = []
        for rule in self._rules:
            try:
                outcome = rule.contribution(values)
            except ExpressionError as exc:
                return FieldError(
                    None,
                    ErrorCode.RULE_FAILED,
                    f"rule {rule.rule_id!r} could not be evaluated: {exc}",
                )
            if outcome is None:
                continue
            points, capped = outcome
            total += points
            applied_weight += rule.weight
            if explain:
                fired.append(FiredRule(rule.rule_id, points, rule.description, capped))
        low, high = self.min_points, self.max_points
        if self.method == "weighted_mean":
            if applied_weight <= 0:
                return FieldError(
                    None, ErrorCode.NO_EVIDENCE, "no rule applies: every field they read is null"
                )
            score = min(1.0, max(0.0, total / applied_weight))
            low, high = 0.0, applied_weight
        else:
            score = self.combine(total)
        explanation = (
            RulesExplanation(
                fired=tuple(fired),
                total_points=total,
                min_points=low,
                max_points=high,
                combination=self._combination,
            )
            if explain
            else None
        )
        return EngineScore(score, explanation)

    def score(
        self, rows: Sequence[Mapping[str, Any]], *, explain: bool = True
    ) -> list[EngineOutcome]:
        return [self.evaluate(values, explain=explain) for values in rows]


def compile_rules(document: Mapping[str, Any] | RulesDefinition, schema: InputSchema) -> RulesModel:
    """Check a rules document against `schema` and compile it.

    Raises `InvalidModelDefinition` listing every problem, each with its path
    (``rules[3].when.value``) and the rule's id.
    """
    problems = DefinitionProblems(_DOCUMENT)
    if isinstance(document, RulesDefinition):
        definition = document
    else:
        try:
            definition = RulesDefinition.model_validate(document)
        except ValidationError as exc:
            problems.add_pydantic(exc, document)
            raise problems.error() from None

    seen: set[str] = set()
    rules: list[_Rule] = []
    fields_read: set[str] = set()
    # One budget for the schema's expressions and every rule's (assay.engine.expressions).
    with expression_budget(spent=schema.expression_terms):
        for index, spec in enumerate(definition.rules):
            path = join_path("rules", index)
            if spec.id in seen:
                problems.add(join_path(path, "id"), "duplicate rule id", spec.id)
            seen.add(spec.id)
            rule = _compile_rule(spec, schema, problems, path, fields_read)
            if rule is not None:
                rules.append(rule)
    problems.raise_if_any()

    points_range = _points_range(definition.combine, rules, problems)
    problems.raise_if_any()
    fields = {name: schema.fields[name] for name in schema.field_names if name in fields_read}
    return RulesModel(definition, tuple(rules), fields, points_range)


def _compile_rule(
    spec: RuleSpec,
    schema: InputSchema,
    problems: DefinitionProblems,
    path: str,
    fields_read: set[str],
) -> _Rule | None:
    when: Condition | None = None
    ok = True
    if spec.when is not None:
        when, read = compile_condition(
            spec.when, schema, problems, join_path(path, "when"), spec.id
        )
        fields_read.update(read)
        ok = when is not None
    value: CompiledExpression | None = None
    if spec.value is not None:
        try:
            value = compile_expression(spec.value, probe=schema.probe_values, result="number")
        except ExpressionDefinitionError as exc:
            problems.add(join_path(path, "value"), str(exc), spec.id)
            return None
        fields_read.update(value.variables)
    if not ok:
        return None
    return _Rule(
        rule_id=spec.id,
        description=spec.description,
        when=when,
        points=spec.points,
        value=value,
        weight=1.0 if spec.weight is None else spec.weight,
        cap_min=spec.cap.min if spec.cap else None,
        cap_max=spec.cap.max if spec.cap else None,
    )


def _points_range(
    combine: Combination, rules: Sequence[_Rule], problems: DefinitionProblems
) -> tuple[float, float] | None:
    if combine.method == "logistic":
        return None
    if combine.method == "weighted_mean":
        for index, rule in enumerate(rules):
            if rule.value is None or rule.weight <= 0:
                problems.add(
                    join_path("rules", index),
                    "a weighted_mean combines value rules with a positive weight only",
                    rule.rule_id,
                )
        return None
    low, high = 0.0, 0.0
    unbounded: list[int] = []
    for index, rule in enumerate(rules):
        bounds = rule.bounds()
        if bounds is None:
            unbounded.append(index)
            continue
        low += bounds[0]
        high += bounds[1]
    if combine.min_points is not None:
        low = combine.min_points
    if combine.max_points is not None:
        high = combine.max_points
    declared = combine.min_points is not None and combine.max_points is not None
    if unbounded and not declared:
        for index in unbounded:
            problems.add(
                join_path("rules", index, "cap"),
                "a value rule without cap min and max makes the linear score unbounded; "
                "add a cap or declare combine.min_points and combine.max_points",
                rules[index].rule_id,
            )
    elif high <= low:
        problems.add("combine", "max_points must be above min_points; no rule can move the score")
    return low, high
