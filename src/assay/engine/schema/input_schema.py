"""Compiled input schemas: validate a record, fill defaults, derive fields, check cross-field rules.

`compile_schema(document)` checks a schema document once (every problem reported
with its path and field name) and returns an `InputSchema` whose `validate` is called
per record. Validation never stops at the first problem: a `RowError` lists every
failing field with the rule it broke. Values that reach a model are finite numbers:
NaN and infinity are refused, and derived values that are not finite (a division by
zero) are errors, never features.

Order of work for one record: unknown fields, then each declared field in schema order
(type, finiteness, range, enum, length, pattern), then derived fields in schema order,
then cross-field rules. A derived field or rule whose inputs failed is skipped (the
input's own error is already reported).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from assay.engine.definition_errors import DefinitionProblems, join_path
from assay.engine.expressions import expression_budget
from assay.engine.results import ErrorCode, FieldError, RowError, ValidatedRecord
from assay.engine.schema.cross_field import (
    Agreement,
    Check,
    Derivation,
    compile_cross_field_rules,
    compile_derivations,
    ready,
)
from assay.engine.schema.definition import (
    DEFAULT_MAX_STRING_LENGTH,
    FieldSpec,
    FieldType,
    SchemaDefinition,
)
from assay.engine.schema.field_checks import FieldChecker, build_checker, probe_value

_MAX_UNKNOWN_REPORTED = 20
_DOCUMENT = "input schema"


@dataclass(frozen=True, slots=True)
class _InputField:
    name: str
    required: bool
    default: Any
    checker: FieldChecker


class InputSchema:
    """A compiled schema. Immutable and safe to share between threads."""

    def __init__(
        self,
        definition: SchemaDefinition,
        inputs: tuple[_InputField, ...],
        derivations: tuple[Derivation, ...],
        agreements: tuple[Agreement, ...],
        checks: tuple[Check, ...],
    ) -> None:
        self.definition = definition
        self.fields: dict[str, FieldSpec] = {f.name: f for f in definition.fields}
        self.field_names: tuple[str, ...] = tuple(self.fields)
        self.field_types: dict[str, FieldType] = {f.name: f.type for f in definition.fields}
        self.pii_fields: frozenset[str] = frozenset(f.name for f in definition.fields if f.pii)
        self.probe_values: dict[str, Any] = {f.name: probe_value(f) for f in definition.fields}
        self._inputs = inputs
        self._accepted = frozenset(i.name for i in inputs)
        self._derived_only = frozenset(self.fields) - self._accepted
        self._reject_unknown = definition.additional_fields == "reject"
        self._derivations = derivations
        self._agreements = agreements
        self._checks = checks
        self.expression_terms = 0
        canonical = json.dumps(
            definition.model_dump(mode="json", exclude_none=True),
            sort_keys=True,
            separators=(",", ":"),
        )
        self.digest = hashlib.sha256(canonical.encode()).hexdigest()

    def always_present(self, name: str) -> bool:
        """Whether a valid record always has a non-null value for `name`."""
        spec = self.fields[name]
        if spec.derive is not None:
            return spec.derive.otherwise is not None
        return spec.is_required or spec.default is not None

    def validate(self, record: object, index: int = 0) -> ValidatedRecord | RowError:
        """Validate one record; a `RowError` lists every problem found."""
        if not isinstance(record, Mapping):
            return RowError(index, (FieldError(None, ErrorCode.TYPE, "must be an object"),))
        errors: list[FieldError] = []
        if len(record.keys() - self._accepted):
            self._report_unknown(record, errors)
        values: dict[str, Any] = {}
        for field in self._inputs:
            raw = record.get(field.name)
            if raw is None:
                if field.required:
                    errors.append(FieldError(field.name, ErrorCode.REQUIRED, "is required"))
                else:
                    values[field.name] = field.default
                continue
            value, error = field.checker.check(raw)
            if error is None:
                values[field.name] = value
            else:
                errors.append(error)
        derived = self._derive(values, errors)
        self._cross_check(values, derived, errors)
        if errors:
            return RowError(index, tuple(errors))
        return ValidatedRecord(index, values, derived)

    def _report_unknown(self, record: Mapping[Any, Any], errors: list[FieldError]) -> None:
        extra = [key for key in record if key not in self._accepted]
        if self._reject_unknown:
            unknown = [key for key in extra if key not in self._derived_only]
            errors.extend(
                FieldError(str(key)[:64], ErrorCode.UNKNOWN_FIELD, "is not a field")
                for key in unknown[:_MAX_UNKNOWN_REPORTED]
            )
            if len(unknown) > _MAX_UNKNOWN_REPORTED:
                more = len(unknown) - _MAX_UNKNOWN_REPORTED
                errors.append(
                    FieldError(None, ErrorCode.UNKNOWN_FIELD, f"{more} more unknown fields")
                )
        # Even when unknown fields are ignored, a client must not override a derived value.
        errors.extend(
            FieldError(key, ErrorCode.DERIVED_ONLY, "is computed from other fields; do not send it")
            for key in extra
            if key in self._derived_only
        )

    def _derive(self, values: dict[str, Any], errors: list[FieldError]) -> tuple[str, ...]:
        return tuple(d.name for d in self._derivations if d.apply(values, errors))

    def _cross_check(
        self, values: dict[str, Any], derived: tuple[str, ...], errors: list[FieldError]
    ) -> None:
        for agreement in self._agreements:
            # A derived value agrees with itself; only a supplied one is compared.
            if agreement.field not in derived and ready(values, agreement.inputs):
                agreement.check(values, errors)
        for check in self._checks:
            if ready(values, check.inputs):
                check.check(values, errors)

    def json_schema(self) -> dict[str, Any]:
        """The accepted input as a JSON Schema (draft 2020-12) object, for API documents."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        json_types = {"number": "number", "integer": "integer", "string": "string"}
        for spec in self.definition.fields:
            if not spec.accepts_input:
                continue
            prop: dict[str, Any] = {"type": json_types.get(spec.type, "boolean")}
            for key in ("description", "minimum", "maximum", "enum", "pattern", "default"):
                value = getattr(spec, key)
                if value is not None:
                    prop[key] = value
            if spec.type == "string":
                prop["maxLength"] = self._string_max(spec)
                if spec.min_length is not None:
                    prop["minLength"] = spec.min_length
            if spec.unit:
                prop["x-unit"] = spec.unit
            if spec.pii:
                prop["x-pii"] = True
            properties[spec.name] = prop
            if spec.is_required:
                required.append(spec.name)
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": not self._reject_unknown,
        }

    @staticmethod
    def _string_max(spec: FieldSpec) -> int:
        return spec.max_length or DEFAULT_MAX_STRING_LENGTH


def compile_schema(document: Mapping[str, Any] | SchemaDefinition) -> InputSchema:
    """Check and compile a schema document; `InvalidModelDefinition` lists every problem."""
    problems = DefinitionProblems(_DOCUMENT)
    if isinstance(document, SchemaDefinition):
        definition = document
    else:
        try:
            definition = SchemaDefinition.model_validate(document)
        except ValidationError as exc:
            problems.add_pydantic(exc, document)
            raise problems.error() from None
    inputs = _compile_inputs(definition, problems)
    probe = {f.name: probe_value(f) for f in definition.fields}
    with expression_budget() as budget:
        derivations = compile_derivations(definition, probe, problems)
        agreements, checks = compile_cross_field_rules(definition, probe, problems)
    problems.raise_if_any()
    schema = InputSchema(definition, inputs, derivations, agreements, checks)
    # A model's rules spend from the same budget, after what its schema spent.
    schema.expression_terms = budget.spent
    return schema


def _compile_inputs(
    definition: SchemaDefinition, problems: DefinitionProblems
) -> tuple[_InputField, ...]:
    seen: set[str] = set()
    inputs: list[_InputField] = []
    for i, spec in enumerate(definition.fields):
        path = join_path("fields", i)
        if spec.name in seen:
            problems.add(join_path(path, "name"), "duplicate field name", spec.name)
        seen.add(spec.name)
        try:
            checker = build_checker(spec)
        except ValueError as exc:
            problems.add(join_path(path, "pattern"), str(exc), spec.name)
            continue
        for j, option in enumerate(spec.enum or ()):
            _, error = checker.check(option)
            if error is not None and error.code != ErrorCode.ENUM:
                problems.add(join_path(path, "enum", j), f"enum value {error.message}", spec.name)
        default = None
        if spec.default is not None:
            # Stored as checked, so a YAML `default: 0` on a number field is 0.0, not 0.
            default, error = checker.check(spec.default)
            if error is not None:
                problems.add(join_path(path, "default"), f"default {error.message}", spec.name)
        if spec.accepts_input:
            inputs.append(_InputField(spec.name, spec.is_required, default, checker))
    return tuple(inputs)
