"""Derived fields and cross-field rules of an input schema: compiled once, applied per record.

A derived field is computed from fields before it (``runway_months`` from cash and
burn); an agreement rule checks a supplied field against such a computation within a
tolerance; a check rule is any boolean expression over several fields. Each step
appends `FieldError`s to the record's list rather than raising, so one record reports
every problem at once. A step whose inputs already failed is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assay.engine.definition_errors import DefinitionProblems, join_path
from assay.engine.expressions import (
    CompiledExpression,
    ExpressionDefinitionError,
    ExpressionError,
    ExpressionResult,
    compile_expression,
)
from assay.engine.results import ErrorCode, FieldError
from assay.engine.schema.definition import AgreesRule, CheckRule, FieldSpec, SchemaDefinition


def inputs_of(*expressions: CompiledExpression | None) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for expr in expressions:
        if expr is not None:
            names.update(dict.fromkeys(expr.variables))
    return tuple(names)


def ready(values: Mapping[str, Any], names: tuple[str, ...]) -> bool | None:
    """True if every input is valid and non-null; None if one is null; False if one failed."""
    state: bool | None = True
    for name in names:
        if name not in values:
            return False
        if values[name] is None:
            state = None
    return state


@dataclass(frozen=True, slots=True)
class Derivation:
    name: str
    expr: CompiledExpression
    when: CompiledExpression | None
    otherwise: float | None
    minimum: float | None
    maximum: float | None
    clip: bool
    accepts_input: bool
    inputs: tuple[str, ...]

    def apply(self, values: dict[str, Any], errors: list[FieldError]) -> bool:
        """Set the derived value in `values`; True if it was derived (not supplied)."""
        if self.accepts_input and (self.name not in values or values[self.name] is not None):
            return False  # supplied by the client (agreement rules check it) or invalid
        state = ready(values, self.inputs)
        if state is False:
            return False
        try:
            if state is None or (self.when is not None and not self.when.evaluate_bool(values)):
                value = self.otherwise
            else:
                value = self.expr.evaluate_number(values)
        except ExpressionError as exc:
            message = f"could not be derived: {exc}"
            errors.append(FieldError(self.name, ErrorCode.DERIVATION_FAILED, message))
            return False
        if value is not None:
            value = self._bounded(value, errors)
            if value is None:
                return False
        values[self.name] = value
        return True

    def _bounded(self, value: float, errors: list[FieldError]) -> float | None:
        low, high = self.minimum, self.maximum
        if self.clip:
            if low is not None and value < low:
                return low
            if high is not None and value > high:
                return high
            return value
        if low is not None and value < low:
            errors.append(
                FieldError(self.name, ErrorCode.MINIMUM, f"derived value is below {low:g}")
            )
            return None
        if high is not None and value > high:
            errors.append(
                FieldError(self.name, ErrorCode.MAXIMUM, f"derived value is above {high:g}")
            )
            return None
        return value


@dataclass(frozen=True, slots=True)
class Agreement:
    field: str
    expr: CompiledExpression
    when: CompiledExpression | None
    relative: float
    absolute: float
    message: str
    inputs: tuple[str, ...]

    def check(self, values: Mapping[str, Any], errors: list[FieldError]) -> None:
        try:
            if self.when is not None and not self.when.evaluate_bool(values):
                return
            expected = self.expr.evaluate_number(values)
        except ExpressionError as exc:
            message = f"could not be checked: {exc}"
            errors.append(FieldError(self.field, ErrorCode.INCONSISTENT, message))
            return
        allowed = max(self.absolute, self.relative * abs(expected))
        if abs(values[self.field] - expected) > allowed:
            errors.append(FieldError(self.field, ErrorCode.INCONSISTENT, self.message))


@dataclass(frozen=True, slots=True)
class Check:
    expr: CompiledExpression
    blame: tuple[str, ...]
    message: str
    inputs: tuple[str, ...]

    def check(self, values: Mapping[str, Any], errors: list[FieldError]) -> None:
        try:
            holds = self.expr.evaluate_bool(values)
        except ExpressionError as exc:
            holds, message = False, f"{self.message} (could not be checked: {exc})"
        else:
            message = self.message
        if not holds:
            errors.extend(FieldError(name, ErrorCode.CROSS_FIELD, message) for name in self.blame)


def _expression(
    source: str,
    probe: Mapping[str, Any],
    result: ExpressionResult,
    path: str,
    name: str | None,
    problems: DefinitionProblems,
) -> CompiledExpression | None:
    try:
        return compile_expression(source, probe=probe, result=result)
    except ExpressionDefinitionError as exc:
        problems.add(path, str(exc), name)
        return None


def compile_derivations(
    definition: SchemaDefinition, probe: Mapping[str, Any], problems: DefinitionProblems
) -> tuple[Derivation, ...]:
    """Every `derive` entry, in schema order; problems are recorded, not raised."""
    # A derived field may read input fields and the derived fields declared before it.
    available = {f.name: probe[f.name] for f in definition.fields if f.derive is None}
    out: list[Derivation] = []
    for i, spec in enumerate(definition.fields):
        if spec.derive is None:
            continue
        path = join_path("fields", i, "derive")
        derive = spec.derive
        expr = _expression(
            derive.expr, available, "number", join_path(path, "expr"), spec.name, problems
        )
        when = None
        if derive.when is not None:
            when = _expression(
                derive.when, available, "bool", join_path(path, "when"), spec.name, problems
            )
        if derive.otherwise is not None and (
            (spec.minimum is not None and derive.otherwise < spec.minimum)
            or (spec.maximum is not None and derive.otherwise > spec.maximum)
        ):
            problems.add(join_path(path, "otherwise"), "is outside [minimum, maximum]", spec.name)
        available[spec.name] = probe[spec.name]
        if expr is None or (derive.when is not None and when is None):
            continue
        out.append(
            Derivation(
                name=spec.name,
                expr=expr,
                when=when,
                otherwise=derive.otherwise,
                minimum=spec.minimum,
                maximum=spec.maximum,
                clip=derive.clip,
                accepts_input=spec.accepts_input,
                inputs=inputs_of(expr, when),
            )
        )
    return tuple(out)


def compile_cross_field_rules(
    definition: SchemaDefinition, probe: Mapping[str, Any], problems: DefinitionProblems
) -> tuple[tuple[Agreement, ...], tuple[Check, ...]]:
    """The schema's `rules`; problems are recorded, not raised."""
    fields = {f.name: f for f in definition.fields}
    agreements: list[Agreement] = []
    checks: list[Check] = []
    for i, rule in enumerate(definition.rules):
        path = join_path("rules", i)
        if isinstance(rule, AgreesRule):
            agreement = _compile_agreement(rule, fields, probe, path, problems)
            if agreement is not None:
                agreements.append(agreement)
        elif isinstance(rule, CheckRule):
            unknown = [name for name in rule.fields if name not in fields]
            if unknown:
                problems.add(join_path(path, "fields"), f"unknown field(s): {', '.join(unknown)}")
            expr = _expression(rule.expr, probe, "bool", join_path(path, "expr"), None, problems)
            if expr is not None and not unknown:
                checks.append(Check(expr, tuple(rule.fields), rule.message, inputs_of(expr)))
    return tuple(agreements), tuple(checks)


def _compile_agreement(
    rule: AgreesRule,
    fields: Mapping[str, FieldSpec],
    probe: Mapping[str, Any],
    path: str,
    problems: DefinitionProblems,
) -> Agreement | None:
    spec = fields.get(rule.field)
    if spec is None:
        problems.add(join_path(path, "field"), f"unknown field '{rule.field}'")
        return None
    if spec.type not in ("number", "integer") or not spec.accepts_input:
        message = "must be a numeric field that accepts input"
        problems.add(join_path(path, "field"), message, spec.name)
        return None
    # Without its own expression the rule compares with the field's derivation.
    source = rule.expr or (spec.derive.expr if spec.derive else None)
    guard = rule.when
    if guard is None and spec.derive is not None and not rule.expr:
        guard = spec.derive.when
    if source is None:
        message = "is required when the field is not derived"
        problems.add(join_path(path, "expr"), message, spec.name)
        return None
    if rule.relative_tolerance == 0 and rule.absolute_tolerance == 0:
        problems.add(path, "give relative_tolerance or absolute_tolerance", spec.name)
    # The agreement compares the field with other fields, so it may not read itself.
    others = {name: value for name, value in probe.items() if name != spec.name}
    expr = _expression(source, others, "number", join_path(path, "expr"), spec.name, problems)
    when = None
    if guard is not None:
        when = _expression(guard, others, "bool", join_path(path, "when"), spec.name, problems)
        if when is None:
            return None
    if expr is None:
        return None
    tolerance = []
    if rule.relative_tolerance:
        tolerance.append(f"{rule.relative_tolerance:.0%}")
    if rule.absolute_tolerance:
        tolerance.append(f"{rule.absolute_tolerance:g}")
    message = rule.message or (
        f"does not agree with {source} (tolerance {' or '.join(tolerance) or '0'})"
    )
    return Agreement(
        field=spec.name,
        expr=expr,
        when=when,
        relative=rule.relative_tolerance,
        absolute=rule.absolute_tolerance,
        message=message,
        inputs=(spec.name, *inputs_of(expr, when)),
    )
