"""Feature vectorising: encodings, defaults, and features that could not always have a value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from assay.engine.base import EngineScore
from assay.engine.definition_errors import DefinitionProblems
from assay.engine.errors import InvalidModelDefinition
from assay.engine.formats import ArtifactFormat
from assay.engine.ml_model import MLModel
from assay.engine.results import FieldError
from assay.engine.runtimes.base import FloatMatrix, RuntimeInfo, RuntimeOutput
from assay.engine.schema.input_schema import compile_schema
from assay.engine.vectorize import FeatureVectorizer, build_vectorizer

SCHEMA = compile_schema(
    {
        "fields": [
            {"name": "amount", "type": "number"},
            {"name": "stage", "type": "string", "enum": ["seed", "series_a", "series_b"]},
            {"name": "flag", "type": "boolean"},
            {"name": "count", "type": "integer", "default": 2},
            {"name": "note", "type": "string", "required": False},
            {"name": "email", "type": "string", "pii": True, "enum": ["a@b.c"]},
            {"name": "maybe", "type": "number", "required": False},
            {"name": "ratio", "type": "number", "derive": {"expr": "amount / 2.0"}},
            {
                "name": "safe_ratio",
                "type": "number",
                "derive": {"expr": "amount / 2.0", "when": "amount > 0.0", "otherwise": 0},
            },
        ]
    }
)
ROW: dict[str, Any] = {
    "amount": 10.0,
    "stage": "series_a",
    "flag": True,
    "count": 2,
    "note": None,
    "email": "a@b.c",
    "maybe": None,
    "ratio": 5.0,
    "safe_ratio": 5.0,
}


def _build(features: Any) -> FeatureVectorizer:
    problems = DefinitionProblems("model specification")
    vectorizer = build_vectorizer(features, SCHEMA, problems)
    problems.raise_if_any()
    assert vectorizer is not None
    return vectorizer


def test_default_features_skip_pii_free_text_and_sometimes_missing_fields() -> None:
    vectorizer = _build(None)
    assert vectorizer.names == ("amount", "stage", "flag", "count", "safe_ratio")
    np.testing.assert_array_equal(vectorizer.transform([ROW]), [[10.0, 1.0, 1.0, 2.0, 5.0]])


def test_one_hot_and_ordinal_encodings() -> None:
    vectorizer = _build(["count", {"name": "stage", "encoding": "one_hot"}])
    assert vectorizer.names == ("count", "stage=seed", "stage=series_a", "stage=series_b")
    np.testing.assert_array_equal(
        vectorizer.transform([ROW, {**ROW, "stage": "seed"}]), [[2, 0, 1, 0], [2, 1, 0, 0]]
    )
    assert vectorizer.width == 4


def test_a_single_feature_still_gives_a_matrix() -> None:
    vectorizer = _build(["amount"])
    assert vectorizer.transform([ROW, ROW]).shape == (2, 1)


@pytest.mark.parametrize(
    ("features", "path"),
    [
        (["missing"], "features[0].name"),
        (["note"], "features[0]"),
        (["maybe"], "features[0]"),
        (["ratio"], "features[0]"),
        ([{"name": "stage", "encoding": "value"}], "features[0].encoding"),
        ([{"name": "amount", "encoding": "one_hot"}], "features[0].encoding"),
        ([{"name": "amount", "encoding": "binary"}], "features[0].encoding"),
        (["amount", "amount"], "features[1]"),
        ([], "features"),
    ],
)
def test_bad_feature_lists_are_refused(features: Any, path: str) -> None:
    with pytest.raises(InvalidModelDefinition) as caught:
        _build(features)
    assert caught.value.errors is not None
    assert caught.value.errors[0]["path"] == path


class _Constant:
    """A stand-in runtime that returns fixed scores, to test what MLModel does with them."""

    def __init__(self, scores: list[float]) -> None:
        self._scores = np.array(scores)
        self.info = RuntimeInfo(format=ArtifactFormat.ONNX, n_features=1, contributions_note="none")

    def predict(self, batch: FloatMatrix, *, contributions: bool = False) -> RuntimeOutput:
        return RuntimeOutput(self._scores[: len(batch)])


def test_non_finite_scores_and_features_fail_only_their_rows() -> None:
    vectorizer = _build(["amount"])
    model = MLModel(_Constant([0.5, float("nan")]), vectorizer)
    good, bad = model.score([ROW, ROW])
    assert isinstance(good, EngineScore)
    assert isinstance(bad, FieldError)
    assert bad.code == "score_not_finite"
    first, second = MLModel(_Constant([0.25]), vectorizer).score([{**ROW, "amount": None}, ROW])
    assert isinstance(first, FieldError)
    assert first.code == "scoring_failed"
    assert isinstance(second, EngineScore)
    assert second.score == 0.25
    assert MLModel(_Constant([]), vectorizer).score([]) == []
