"""Rules models: conditions, CEL, caps, combinations, explanations and definition errors."""

from __future__ import annotations

import math
from typing import Any

import pytest

from assay.engine.base import EngineScore
from assay.engine.errors import InvalidModelDefinition
from assay.engine.explanations import RulesExplanation
from assay.engine.results import FieldError
from assay.engine.rules.model import RulesModel, compile_rules
from assay.engine.schema.input_schema import InputSchema, compile_schema

SCHEMA = compile_schema(
    {
        "fields": [
            {"name": "runway_months", "type": "number", "minimum": 0},
            {"name": "burn_multiple", "type": "number", "minimum": 0},
            {"name": "founders_count", "type": "integer", "minimum": 1},
            {"name": "sector", "type": "string", "enum": ["saas", "fintech", "biotech"]},
            {"name": "technical", "type": "boolean"},
            {"name": "ltv_cac_ratio", "type": "number", "required": False},
            {"name": "cash", "type": "number", "minimum": 0},
            {"name": "burn", "type": "number", "minimum": 0},
        ]
    }
)
BASE: dict[str, Any] = {
    "runway_months": 20.0,
    "burn_multiple": 1.2,
    "founders_count": 2,
    "sector": "saas",
    "technical": True,
    "ltv_cac_ratio": 4.0,
    "cash": 1_000_000.0,
    "burn": 50_000.0,
}
RULES: dict[str, Any] = {
    "rules": [
        {
            "id": "long_runway",
            "description": "18+ months",
            "when": {"field": "runway_months", "op": ">=", "value": 18},
            "points": 3,
        },
        {
            "id": "short_runway",
            "when": {"field": "runway_months", "op": "<", "value": 6},
            "points": -4,
        },
        {"id": "efficient", "when": {"field": "burn_multiple", "between": [0, 1.5]}, "points": 2},
        {"id": "hot_sector", "when": {"field": "sector", "in": ["saas", "fintech"]}, "points": 1},
        {
            "id": "team",
            "when": {
                "all": [
                    {"field": "technical", "op": "==", "value": True},
                    {"not": {"field": "founders_count", "op": "==", "value": 1}},
                ]
            },
            "points": 2,
        },
        {"id": "cel_combo", "when": "runway_months >= 12.0 && sector != 'biotech'", "points": 1},
        {"id": "unit_economics", "value": "ltv_cac_ratio - 1.0", "cap": {"min": 0, "max": 2}},
    ]
}


def _model(document: dict[str, Any] = RULES, schema: InputSchema = SCHEMA) -> RulesModel:
    return compile_rules(document, schema)


def _score(model: RulesModel, **changes: Any) -> EngineScore:
    values = {**BASE, **changes}
    outcome = model.evaluate(values)
    assert isinstance(outcome, EngineScore), outcome
    return outcome


def _fired(outcome: EngineScore) -> dict[str, float]:
    assert isinstance(outcome.explanation, RulesExplanation)
    return {rule.rule_id: rule.points for rule in outcome.explanation.fired}


def test_explanation_lists_the_rules_that_fired_with_points() -> None:
    outcome = _score(_model())
    assert _fired(outcome) == {
        "long_runway": 3,
        "efficient": 2,
        "hot_sector": 1,
        "team": 2,
        "cel_combo": 1,
        "unit_economics": 2,  # 4 - 1 = 3, capped at 2
    }
    explanation = outcome.explanation
    assert isinstance(explanation, RulesExplanation)
    capped = {rule.rule_id: rule.capped for rule in explanation.fired}
    assert capped["unit_economics"] is True
    assert capped["long_runway"] is False
    assert explanation.total_points == 11
    assert (
        next(r for r in explanation.fired if r.rule_id == "long_runway").description == "18+ months"
    )


def test_linear_combination_uses_the_computed_points_range() -> None:
    model = _model()
    # Lowest: only short_runway can subtract (-4); highest: 3+2+1+2+1+2 = 11.
    assert (model.min_points, model.max_points) == (-4.0, 11.0)
    outcome = _score(model)
    assert outcome.score == pytest.approx((11 - -4) / 15)
    weak = _score(
        model,
        runway_months=3.0,
        burn_multiple=5.0,
        sector="biotech",
        technical=False,
        ltv_cac_ratio=0.5,
    )
    assert _fired(weak) == {"short_runway": -4, "unit_economics": 0}
    assert weak.score == 0.0


def test_declared_bounds_override_the_computed_range() -> None:
    document = {**RULES, "combine": {"method": "linear", "min_points": 0, "max_points": 22}}
    assert _score(_model(document)).score == pytest.approx(0.5)


def test_logistic_combination() -> None:
    document = {**RULES, "combine": {"method": "logistic", "midpoint": 11, "scale": 2}}
    model = _model(document)
    assert _score(model).score == pytest.approx(0.5)
    low = _score(model, runway_months=3.0)
    # 11 - long_runway (3) - cel_combo (1) + short_runway (-4) = 3 points
    assert low.score == pytest.approx(1 / (1 + math.exp(-(3 - 11) / 2)))
    explanation = low.explanation
    assert isinstance(explanation, RulesExplanation)
    assert explanation.min_points is None
    assert model.combine(1e9) == 1.0  # no overflow far from the midpoint
    assert model.combine(-1e9) == 0.0


def test_null_values_do_not_fire_comparisons_or_value_rules() -> None:
    document = {
        "rules": [
            {
                "id": "ratio_high",
                "when": {"field": "ltv_cac_ratio", "op": ">", "value": 1},
                "points": 1,
            },
            {
                "id": "ratio_missing",
                "when": {"field": "ltv_cac_ratio", "is_null": True},
                "points": -1,
            },
            {"id": "ratio_cel", "when": "ltv_cac_ratio > 2.0", "points": 1},
            {"id": "ratio_value", "value": "ltv_cac_ratio", "cap": {"min": 0, "max": 3}},
            {"id": "not_in", "when": {"field": "ltv_cac_ratio", "not_in": [5]}, "points": 1},
        ]
    }
    assert _fired(_score(_model(document), ltv_cac_ratio=None)) == {"ratio_missing": -1}


def test_a_cel_failure_on_non_null_values_fails_the_record_not_silently() -> None:
    document = {
        "rules": [{"id": "ratio", "when": "founders_count / (founders_count - 2) > 1", "points": 1}]
    }
    outcome = _model(document).evaluate(BASE)  # integer division by zero
    assert isinstance(outcome, FieldError)
    assert outcome.code == "rule_failed"
    assert "ratio" in outcome.message


def test_rules_without_explanation_still_score() -> None:
    outcome = _model().evaluate(BASE, explain=False)
    assert isinstance(outcome, EngineScore)
    assert outcome.explanation is None
    assert outcome.score == _score(_model()).score


def test_fields_read_are_reported() -> None:
    assert set(_model().fields) == {
        "runway_months",
        "burn_multiple",
        "sector",
        "technical",
        "founders_count",
        "ltv_cac_ratio",
    }


def _problems(document: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_rules(document, SCHEMA)
    assert caught.value.errors is not None
    return [dict(e) for e in caught.value.errors]


def test_definition_errors_name_the_rule_index_and_id() -> None:
    problems = _problems(
        {
            "rules": [
                {
                    "id": "fine",
                    "when": {"field": "runway_months", "op": ">", "value": 1},
                    "points": 1,
                },
                {
                    "id": "typo_field",
                    "when": {"field": "runwy", "op": ">", "value": 1},
                    "points": 1,
                },
                {
                    "id": "bad_enum",
                    "when": {"field": "sector", "in": ["saas", "sass"]},
                    "points": 1,
                },
                {
                    "id": "bad_op",
                    "when": {"field": "sector", "op": ">", "value": "saas"},
                    "points": 1,
                },
                {"id": "bad_cel", "when": "runway_months >", "points": 1},
                {"id": "types", "when": "founders_count * 1.5 > 2.0", "points": 1},
                {
                    "id": "wrong_value",
                    "when": {"field": "runway_months", "op": ">=", "value": "x"},
                    "points": 1,
                },
                {"id": "fine", "when": {"field": "technical", "is_null": False}, "points": 1},
            ]
        }
    )
    found = {(p["path"], p.get("name")) for p in problems}
    assert ("rules[1].when.field", "typo_field") in found
    assert ("rules[2].when.in[1]", "bad_enum") in found
    assert ("rules[3].when.op", "bad_op") in found
    assert ("rules[4].when", "bad_cel") in found
    assert ("rules[5].when", "types") in found
    assert ("rules[6].when.value", "wrong_value") in found
    assert ("rules[7].id", "fine") in found


def test_shape_errors_name_the_rule() -> None:
    problems = _problems(
        {
            "rules": [
                {"id": "both", "when": "technical", "points": 1, "value": "runway_months"},
                {"id": "no_condition", "points": 1},
                {"id": "BAD ID", "when": "technical", "points": 1},
            ]
        }
    )
    assert [(p["path"], p.get("name")) for p in problems] == [
        ("rules[0]", "both"),
        ("rules[1]", "no_condition"),
        ("rules[2].id", "BAD ID"),
    ]


def test_uncapped_value_rule_needs_declared_bounds() -> None:
    document = {"rules": [{"id": "raw", "value": "runway_months"}]}
    problems = _problems(document)
    assert problems[0]["path"] == "rules[0].cap"
    assert problems[0]["name"] == "raw"


def test_uncapped_value_rule_with_declared_bounds_scores() -> None:
    document = {
        "rules": [{"id": "raw", "value": "runway_months"}],
        "combine": {"min_points": 0, "max_points": 40},
    }
    outcome = compile_rules(document, SCHEMA).evaluate(BASE)
    assert isinstance(outcome, EngineScore)
    assert outcome.score == pytest.approx(0.5)


def test_a_rule_set_that_cannot_move_the_score_is_refused() -> None:
    problems = _problems({"rules": [{"id": "zero", "when": "technical", "points": 0}]})
    assert problems[0]["path"] == "combine"


def test_a_rules_model_cannot_spend_more_than_its_expression_budget() -> None:
    # Each rule is well within the per-expression bound (~300 terms), but 17 of them
    # (with the schema's own expressions) exceed what one model may spend per record.
    heavy = " + ".join(["cash"] * 150) + " > 0.0"
    many = {"rules": [{"id": f"r{i}", "when": heavy, "points": 1} for i in range(17)]}
    problems = _problems(many)
    assert any("together exceed 5000 terms" in p["message"] for p in problems), problems
    assert problems[0]["path"].startswith("rules[16]")
    # Sixteen fit.
    compile_rules({"rules": many["rules"][:16]}, SCHEMA)


def test_the_schema_expressions_count_against_the_rules_budget() -> None:
    heavy = " + ".join(["cash"] * 150)
    schema = compile_schema(
        {
            "fields": [
                {"name": "cash", "type": "number", "minimum": 0},
                *[{"name": f"d{i}", "type": "number", "derive": {"expr": heavy}} for i in range(8)],
            ]
        }
    )
    assert schema.expression_terms == 8 * 299
    rule = {"id": "r", "when": " + ".join(["cash"] * 150) + " > 0.0", "points": 1}
    compile_rules({"rules": [dict(rule, id=f"r{i}") for i in range(8)]}, schema)
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_rules({"rules": [dict(rule, id=f"r{i}") for i in range(9)]}, schema)
    messages = [e["message"] for e in caught.value.errors or []]
    assert any("together exceed 5000 terms (4800 before this one" in m for m in messages)


EVIDENCE = compile_schema(
    {
        "fields": [
            {"name": name, "type": "number", "required": False, "minimum": 0, "maximum": 100}
            for name in ("first", "second", "third")
        ]
    }
)
WEIGHTED: dict[str, Any] = {
    "combine": {"method": "weighted_mean"},
    "rules": [
        {"id": "first", "value": "first / 100.0", "weight": 0.5},
        {"id": "second", "value": "second / 100.0", "weight": 0.3},
        {"id": "third", "value": "third / 100.0", "weight": 0.2},
    ],
}


def test_weighted_mean_weighs_every_answer() -> None:
    outcome = compile_rules(WEIGHTED, EVIDENCE).evaluate(
        {"first": 100.0, "second": 50.0, "third": 0.0}
    )
    assert isinstance(outcome, EngineScore)
    assert outcome.score == pytest.approx(0.5 + 0.15)


def test_weighted_mean_shares_a_missing_answers_weight_among_the_others() -> None:
    outcome = compile_rules(WEIGHTED, EVIDENCE).evaluate(
        {"first": None, "second": 100.0, "third": 0.0}
    )
    assert isinstance(outcome, EngineScore)
    # 0.3 x 1 + 0.2 x 0 over the 0.5 that applied: missing is neither clean nor bad.
    assert outcome.score == pytest.approx(0.6)
    explanation = outcome.explanation
    assert isinstance(explanation, RulesExplanation)
    assert explanation.max_points == pytest.approx(0.5)
    assert [rule.rule_id for rule in explanation.fired] == ["second", "third"]


def test_weighted_mean_with_no_evidence_has_no_score() -> None:
    outcome = compile_rules(WEIGHTED, EVIDENCE).evaluate(
        {"first": None, "second": None, "third": None}
    )
    assert isinstance(outcome, FieldError)
    assert outcome.code == "no_evidence"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"combine": {"method": "weighted_mean", "max_points": 3}}, "takes no parameters"),
        (
            {"rules": [{"id": "p", "when": "first > 1.0", "points": 1}]},
            "value rules with a positive weight",
        ),
        (
            {"rules": [{"id": "w", "value": "first / 100.0", "weight": 0}]},
            "value rules with a positive weight",
        ),
    ],
    ids=["parameters", "points-rule", "zero-weight"],
)
def test_weighted_mean_refuses_what_it_cannot_average(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidModelDefinition) as raised:
        compile_rules({**WEIGHTED, **change}, EVIDENCE)
    assert message in str(raised.value.errors)
