"""ML models as scoring engines: vectorise a batch, make one runtime call, explain each row."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from assay.engine.base import EngineOutcome, EngineScore
from assay.engine.explanations import FeatureContribution, FeatureExplanation
from assay.engine.results import ErrorCode, FieldError
from assay.engine.runtimes.base import FloatMatrix, ModelRuntime, RuntimeOutput
from assay.engine.schema.definition import FieldSpec
from assay.engine.vectorize import FeatureVectorizer

_NOT_FINITE_FEATURES = FieldError(
    None, ErrorCode.SCORING_FAILED, "a feature value was not a finite number"
)
_NOT_FINITE_SCORE = FieldError(
    None, ErrorCode.SCORE_NOT_FINITE, "the model did not give a finite score"
)


class MLModel:
    """A runtime plus the vectoriser that feeds it; a `ScoringEngine`."""

    kind = "ml"

    def __init__(self, runtime: ModelRuntime, vectorizer: FeatureVectorizer) -> None:
        self.runtime = runtime
        self.vectorizer = vectorizer
        self._names = vectorizer.names
        self._note = runtime.info.contributions_note
        self._no_contributions = FeatureExplanation(None, None, None, self._note)

    @property
    def fields(self) -> Mapping[str, FieldSpec]:
        return self.vectorizer.source_fields

    def score(
        self, rows: Sequence[Mapping[str, Any]], *, explain: bool = True
    ) -> list[EngineOutcome]:
        if not rows:
            return []
        batch = self.vectorizer.transform(rows)
        finite_rows = np.isfinite(batch).all(axis=1)
        if finite_rows.all():
            return self._score_matrix(batch, explain)
        # Validation keeps non-finite values out; this is the last line, not the first.
        outcomes: list[EngineOutcome] = [_NOT_FINITE_FEATURES] * len(rows)
        keep = np.flatnonzero(finite_rows)
        if keep.size:
            for position, outcome in zip(
                keep, self._score_matrix(batch[keep], explain), strict=True
            ):
                outcomes[int(position)] = outcome
        return outcomes

    def _score_matrix(self, batch: FloatMatrix, explain: bool) -> list[EngineOutcome]:
        output = self.runtime.predict(batch, contributions=explain and self._note is None)
        scores = output.scores.tolist()
        outcomes: list[EngineOutcome] = []
        for i, score in enumerate(scores):
            if not math.isfinite(score):
                outcomes.append(_NOT_FINITE_SCORE)
            elif not explain:
                outcomes.append(EngineScore(score, None))
            else:
                outcomes.append(EngineScore(score, self._explain(batch, output, i)))
        return outcomes

    def _explain(self, batch: FloatMatrix, output: RuntimeOutput, row: int) -> FeatureExplanation:
        if output.contributions is None:
            return self._no_contributions
        contrib = output.contributions[row]
        values = batch[row]
        # Largest effect first; ties keep the model's column order.
        order = np.argsort(-np.abs(contrib[:-1]), kind="stable")
        items = tuple(
            FeatureContribution(self._names[j], float(values[j]), float(contrib[j])) for j in order
        )
        return FeatureExplanation(items, float(contrib[-1]), output.space)
