"""Ensembles: the weighted-sum identity, caps, ceilings, failures and definition errors."""

from __future__ import annotations

import math
from typing import Any

import pytest

from assay.engine.base import EngineScore, ScoringEngine
from assay.engine.build import build_engine
from assay.engine.ensemble import Ensemble, compile_ensemble
from assay.engine.errors import InvalidModelDefinition
from assay.engine.explanations import EnsembleExplanation, FeatureExplanation, RulesExplanation
from assay.engine.results import FieldError
from assay.engine.rules.model import compile_rules
from assay.engine.schema.input_schema import InputSchema, compile_schema
from assay.engine.spec import parse_model_spec

ROW = {"a": 1.0, "b": -0.5, "c": 0.2, "d": 0.0}


@pytest.fixture(scope="module")
def components(tiny_schema: InputSchema, artifacts: dict[str, bytes]) -> dict[str, ScoringEngine]:
    strong_a = compile_rules(
        {
            "rules": [
                {"id": "a_positive", "when": {"field": "a", "op": ">", "value": 0}, "points": 3},
                {"id": "b_positive", "when": "b > 0.0", "points": 1},
            ]
        },
        tiny_schema,
    )
    weak = compile_rules(
        {"rules": [{"id": "c_high", "when": {"field": "c", "op": ">", "value": 5}, "points": 1}]},
        tiny_schema,
    )
    lgbm = build_engine(
        parse_model_spec({"kind": "ml", "format": "lightgbm"}),
        tiny_schema,
        artifact=artifacts["lightgbm"],
    )
    return {"rules-a": strong_a, "weak": weak, "lgbm": lgbm}


def _ensemble(
    document: dict[str, Any], components: dict[str, ScoringEngine], schema: InputSchema
) -> Ensemble:
    return compile_ensemble(document, components, schema)


def _explained(
    ensemble: Ensemble, row: dict[str, float] = ROW
) -> tuple[float, EnsembleExplanation]:
    (outcome,) = ensemble.score([row])
    assert isinstance(outcome, EngineScore)
    assert isinstance(outcome.explanation, EnsembleExplanation)
    return outcome.score, outcome.explanation


def test_weighted_sum_equals_the_score(
    components: dict[str, ScoringEngine], tiny_schema: InputSchema
) -> None:
    ensemble = _ensemble(
        {
            "components": [
                {"model": "lgbm", "weight": 2},
                {"model": "rules-a", "weight": 1},
                {"model": "weak", "weight": 1},
            ]
        },
        components,
        tiny_schema,
    )
    score, explanation = _explained(ensemble)
    weights = {c.name: c.weight for c in explanation.components}
    assert weights == {"lgbm": 0.5, "rules-a": 0.25, "weak": 0.25}  # normalised
    assert math.fsum(c.contribution for c in explanation.components) == pytest.approx(
        score, abs=1e-12
    )
    assert all(c.contribution == pytest.approx(c.weight * c.score) for c in explanation.components)
    by_name = {c.name: c for c in explanation.components}
    assert by_name["rules-a"].score == 0.75  # 3 of 4 points
    assert isinstance(by_name["rules-a"].explanation, RulesExplanation)
    assert isinstance(by_name["lgbm"].explanation, FeatureExplanation)
    assert explanation.ceiling is None
    assert explanation.uncapped_score == score


def test_component_caps_keep_the_identity(
    components: dict[str, ScoringEngine], tiny_schema: InputSchema
) -> None:
    ensemble = _ensemble(
        {
            "components": [
                {"model": "rules-a", "weight": 1, "max_score": 0.5},
                {"model": "weak", "weight": 1, "min_score": 0.2},
            ]
        },
        components,
        tiny_schema,
    )
    score, explanation = _explained(ensemble)
    capped, floored = explanation.components
    assert (capped.score, capped.effective_score) == (0.75, 0.5)
    assert (floored.score, floored.effective_score) == (0.0, 0.2)
    assert score == pytest.approx(0.5 * 0.5 + 0.5 * 0.2)
    assert math.fsum(c.contribution for c in explanation.components) == pytest.approx(score)


def test_ceiling_limits_the_score_and_scales_contributions(
    components: dict[str, ScoringEngine], tiny_schema: InputSchema
) -> None:
    ensemble = _ensemble(
        {
            "components": [{"model": "rules-a", "weight": 3}, {"model": "weak", "weight": 1}],
            "ceilings": [
                {"id": "weak_is_critical", "component": "weak", "below": 0.5, "max_score": 0.4},
                {"component": "rules-a", "below": 0.1, "max_score": 0.1},
            ],
        },
        components,
        tiny_schema,
    )
    score, explanation = _explained(ensemble)
    assert explanation.uncapped_score == pytest.approx(0.75 * 0.75)
    assert score == 0.4
    assert explanation.ceiling == "weak_is_critical"
    assert math.fsum(c.contribution for c in explanation.components) == pytest.approx(0.4)
    # Contributions keep their proportions under the ceiling.
    first, second = explanation.components
    assert second.contribution == 0.0
    assert first.contribution == pytest.approx(0.4)


def test_ceiling_does_not_apply_when_the_component_is_healthy(
    components: dict[str, ScoringEngine], tiny_schema: InputSchema
) -> None:
    ensemble = _ensemble(
        {
            "components": [{"model": "rules-a", "weight": 1}],
            "ceilings": [{"component": "rules-a", "below": 0.5, "max_score": 0.1}],
        },
        components,
        tiny_schema,
    )
    score, explanation = _explained(ensemble)
    assert (score, explanation.ceiling) == (0.75, None)


def test_without_explanation_the_score_is_the_same(
    components: dict[str, ScoringEngine], tiny_schema: InputSchema
) -> None:
    ensemble = _ensemble(
        {"components": [{"model": "lgbm", "weight": 1}, {"model": "rules-a", "weight": 1}]},
        components,
        tiny_schema,
    )
    (quiet,) = ensemble.score([ROW], explain=False)
    assert isinstance(quiet, EngineScore)
    assert quiet.explanation is None
    assert quiet.score == _explained(ensemble)[0]


def test_a_failing_component_fails_the_record(tiny_schema: InputSchema) -> None:
    divides = compile_rules(
        {"rules": [{"id": "ratio", "value": "a / b", "cap": {"min": 0, "max": 1}}]}, tiny_schema
    )
    ensemble = compile_ensemble(
        {"components": [{"model": "divides", "weight": 1}]}, {"divides": divides}, tiny_schema
    )
    ok, failed = ensemble.score([ROW, {**ROW, "b": 0.0}])
    assert isinstance(ok, EngineScore)
    assert isinstance(failed, FieldError)
    assert "component 'divides'" in failed.message


def test_definition_errors(components: dict[str, ScoringEngine], tiny_schema: InputSchema) -> None:
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_ensemble(
            {
                "components": [
                    {"model": "missing", "weight": 1},
                    {"model": "weak", "weight": 0},
                ],
            },
            components,
            tiny_schema,
        )
    assert caught.value.errors is not None
    assert caught.value.errors[0]["path"] == "components[1].weight"
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_ensemble(
            {
                "components": [{"model": "missing", "weight": 1}, {"model": "weak", "weight": 1}],
                "ceilings": [{"component": "lgbm", "below": 0.1, "max_score": 0.2}],
            },
            components,
            tiny_schema,
        )
    assert caught.value.errors is not None
    assert [(e["path"], e.get("name")) for e in caught.value.errors] == [
        ("components[0].model", "missing"),
        ("ceilings[0].component", "lgbm"),
    ]


def test_components_must_share_the_ensembles_field_definitions(
    components: dict[str, ScoringEngine],
) -> None:
    other = compile_schema(
        {
            "fields": [
                {"name": "a", "type": "integer"},
                {"name": "c", "type": "number", "minimum": -100, "maximum": 100},
            ]
        }
    )
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_ensemble(
            {"components": [{"model": "rules-a", "weight": 1}, {"model": "weak", "weight": 1}]},
            components,
            other,
        )
    assert caught.value.errors is not None
    messages = [e["message"] for e in caught.value.errors]
    assert any("different definition of field 'a'" in m for m in messages)
    assert any("lacks" in m and "'b'" in m for m in messages)
