"""Shape checks of the definition documents: each inconsistency is refused with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from assay.engine.errors import InvalidModelDefinition
from assay.engine.results import RowError, ValidatedRecord
from assay.engine.rules.model import compile_rules
from assay.engine.schema.input_schema import compile_schema
from assay.engine.spec import parse_model_spec

NUMBER = {"name": "x", "type": "number"}


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"name": "s", "type": "string", "minimum": 1}, "apply only to number and integer"),
        ({"name": "n", "type": "number", "pattern": "a"}, "apply only to string"),
        ({"name": "s", "type": "string", "min_length": 5, "max_length": 2}, "min_length is above"),
        ({"name": "b", "type": "boolean", "enum": [True]}, "enum does not apply"),
        ({"name": "d", "type": "integer", "derive": {"expr": "x"}}, "must have type number"),
        (
            {"name": "d", "type": "number", "required": True, "derive": {"expr": "x"}},
            "cannot be required",
        ),
        (
            {"name": "d", "type": "number", "default": 1, "derive": {"expr": "x"}},
            "derive.otherwise",
        ),
        ({"name": "d", "type": "number", "derive": {"expr": "x", "clip": True}}, "needs a minimum"),
        ({"name": "i", "type": "number", "input": False}, "must accept input"),
        ({"name": "r", "type": "number", "required": True, "default": 1}, "drop `required: true`"),
        ({"name": "e", "type": "string", "enum": ["a", 2]}, "enum value must be a string"),
        (
            {"name": "o", "type": "number", "maximum": 5, "derive": {"expr": "x", "otherwise": 9}},
            "outside",
        ),
    ],
)
def test_inconsistent_fields_are_refused(field: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_schema({"fields": [NUMBER, field]})
    assert caught.value.errors is not None
    assert message in caught.value.errors[0]["message"]
    assert caught.value.errors[0]["path"].startswith("fields[1]")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"kind": "agrees", "field": "x"}, "is required when the field is not derived"),
        (
            {"kind": "agrees", "field": "s", "expr": "1.0", "relative_tolerance": 0.1},
            "numeric field",
        ),
        (
            {"kind": "agrees", "field": "x", "expr": "x * 2.0", "relative_tolerance": 0.1},
            "unknown field",
        ),
        ({"kind": "agrees", "field": "x", "expr": "2.0"}, "give relative_tolerance"),
        ({"kind": "check", "expr": "x > 1.0", "fields": ["nope"], "message": "m"}, "unknown field"),
    ],
)
def test_bad_cross_field_rules_are_refused(rule: dict[str, Any], message: str) -> None:
    schema = {"fields": [NUMBER, {"name": "s", "type": "string"}], "rules": [rule]}
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_schema(schema)
    assert caught.value.errors is not None
    assert any(message in e["message"] for e in caught.value.errors)


def test_agreement_with_its_own_expression_and_guard() -> None:
    schema = compile_schema(
        {
            "fields": [NUMBER, {"name": "y", "type": "number"}],
            "rules": [
                {
                    "kind": "agrees",
                    "field": "y",
                    "expr": "x * 2.0",
                    "when": "x > 0.0",
                    "absolute_tolerance": 0.5,
                }
            ],
        }
    )
    assert isinstance(schema.validate({"x": 2.0, "y": 4.4}), ValidatedRecord)
    assert isinstance(schema.validate({"x": 2.0, "y": 5.0}), RowError)
    assert isinstance(schema.validate({"x": -2.0, "y": 99.0}), ValidatedRecord)  # guard false


def test_derived_values_outside_their_range_are_errors_unless_clipped() -> None:
    schema = compile_schema(
        {
            "fields": [
                NUMBER,
                {
                    "name": "half",
                    "type": "number",
                    "minimum": 0,
                    "maximum": 10,
                    "derive": {"expr": "x / 2.0"},
                },
            ]
        }
    )
    high = schema.validate({"x": 40.0})
    low = schema.validate({"x": -4.0})
    assert [e.code for e in getattr(high, "errors", ())] == ["maximum"]
    assert [e.code for e in getattr(low, "errors", ())] == ["minimum"]


RULE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"id": "r", "when": "x > 1.0", "points": 1, "weight": 2}, "apply to `value` rules"),
    ({"id": "r", "value": "x", "cap": {}}, "give min, max or both"),
    ({"id": "r", "value": "x", "cap": {"min": 3, "max": 1}}, "cap min is above cap max"),
    ({"id": "r", "when": "x > 1.0", "points": float("inf")}, "points must be finite"),
    (
        {"id": "r", "value": "x", "weight": float("nan"), "cap": {"min": 0, "max": 1}},
        "weight must be finite",
    ),
]


@pytest.mark.parametrize(("rule", "message"), RULE_CASES)
def test_inconsistent_rules_are_refused(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_rules({"rules": [rule]}, compile_schema({"fields": [NUMBER]}))
    assert caught.value.errors is not None
    assert message in caught.value.errors[0]["message"]


@pytest.mark.parametrize(
    ("combine", "message"),
    [
        ({"method": "logistic"}, "needs `midpoint` and `scale`"),
        ({"method": "logistic", "midpoint": 1, "scale": 1, "min_points": 0}, "apply to the linear"),
        ({"method": "linear", "midpoint": 1}, "apply to the logistic"),
        ({"min_points": 5, "max_points": 1}, "must be below"),
    ],
)
def test_inconsistent_combinations_are_refused(combine: dict[str, Any], message: str) -> None:
    document = {"combine": combine, "rules": [{"id": "r", "when": "x > 1.0", "points": 1}]}
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_rules(document, compile_schema({"fields": [NUMBER]}))
    assert caught.value.errors is not None
    assert message in caught.value.errors[0]["message"]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"field": "x"}, "exactly one of"),
        ({"field": "x", "op": ">", "value": 1, "colour": "red"}, "unexpected key"),
        ({"field": "x", "in": [1], "value": 1}, "`value` goes with `op`"),
        ({"field": "x", "op": "~", "value": 1}, "op must be one of"),
        ({"field": "x", "op": ">"}, "needs a `value`"),
        ({"field": "x", "between": [3, 1]}, "low <= high"),
        ({"field": "s", "between": [1, 3]}, "non-numeric"),
        ({"field": "x", "in": []}, "non-empty list"),
        ({"field": "x", "is_null": "yes"}, "true or false"),
        ({"all": []}, "non-empty list"),
        ({"some": []}, "expected `field`"),
        (42, "a CEL string or a mapping"),
        (
            {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": "b"}}}}}}}}},
            "nest deeper",
        ),
    ],
)
def test_malformed_conditions_are_refused(condition: Any, message: str) -> None:
    schema = compile_schema(
        {"fields": [NUMBER, {"name": "s", "type": "string"}, {"name": "b", "type": "boolean"}]}
    )
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_rules({"rules": [{"id": "r", "when": condition, "points": 1}]}, schema)
    assert caught.value.errors is not None
    assert message in caught.value.errors[0]["message"]
    assert caught.value.errors[0]["name"] == "r"


def test_model_specs_round_trip_through_json() -> None:
    spec = parse_model_spec(
        {
            "kind": "ml",
            "format": "onnx",
            "features": ["x", {"name": "s", "encoding": "one_hot"}],
            "output": {"name": "probabilities", "class_index": 1},
            "bands": {"risk": [{"label": "high", "below": 0.3}, {"label": "low"}]},
        }
    )
    assert parse_model_spec(spec.model_dump(mode="json")) == spec
    with pytest.raises(InvalidModelDefinition) as caught:
        parse_model_spec({"kind": "quantum"})
    assert caught.value.errors is not None
