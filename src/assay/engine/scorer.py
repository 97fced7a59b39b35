"""The `Scorer`: one loaded model version, from raw records to prediction results.

``score_batch(records)`` = validate -> derive -> (vectorise -> runtime | rules |
ensemble) -> bands -> explanation, for a whole batch with one model call per engine.
The steps are also exposed separately, because the serving path needs to stop in
between: `validate` gives each record's canonical form (the cache key) before the
micro-batcher collects the cache misses for `score_validated`.

A Scorer holds only immutable, compiled state (schema, engine, bands), so one instance
serves any number of threads at once; nothing is compiled, parsed or looked up per call
that could have been done at load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from assay.engine.bands import NO_BANDS, Bands
from assay.engine.base import ScoringEngine
from assay.engine.results import ErrorCode, FieldError, PredictionResult, RowError, ValidatedRecord
from assay.engine.schema.input_schema import InputSchema

_NOT_FINITE = FieldError(None, ErrorCode.SCORE_NOT_FINITE, "the model did not give a finite score")


class Scorer:
    """A model version ready to score: its schema, its engine and its bands."""

    __slots__ = ("bands", "engine", "name", "schema")

    def __init__(
        self,
        *,
        schema: InputSchema,
        engine: ScoringEngine,
        bands: Bands = NO_BANDS,
        name: str | None = None,
    ) -> None:
        self.schema = schema
        self.engine = engine
        self.bands = bands
        self.name = name

    @property
    def kind(self) -> str:
        return self.engine.kind

    def validate(self, records: Sequence[object]) -> list[ValidatedRecord | RowError]:
        """Validate and derive each record; indices are positions in `records`."""
        validate = self.schema.validate
        return [validate(record, index) for index, record in enumerate(records)]

    def score_validated(
        self, rows: Sequence[ValidatedRecord], *, explain: bool = True
    ) -> list[PredictionResult | RowError]:
        """Score records that passed `validate`, in one engine call; results keep their indices."""
        outcomes = self.engine.score([row.values for row in rows], explain=explain)
        classify = self.bands.classify
        results: list[PredictionResult | RowError] = []
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, FieldError):
                results.append(RowError(row.index, (outcome,)))
                continue
            score = outcome.score
            if not math.isfinite(score):
                results.append(RowError(row.index, (_NOT_FINITE,)))
                continue
            label, risk = classify(score)
            results.append(
                PredictionResult(
                    index=row.index,
                    score=score,
                    label=label,
                    risk=risk,
                    explanation=outcome.explanation,
                    derived=row.derived_values(),
                )
            )
        return results

    def score_batch(
        self, records: Sequence[object], *, explain: bool = True
    ) -> list[PredictionResult | RowError]:
        """One result per record, in order: a prediction, or every reason it was not scored."""
        checked = self.validate(records)
        valid = [row for row in checked if isinstance(row, ValidatedRecord)]
        if len(valid) == len(checked):
            return self.score_validated(valid, explain=explain)
        results: list[PredictionResult | RowError] = [
            row for row in checked if isinstance(row, RowError)
        ]
        if valid:
            results.extend(self.score_validated(valid, explain=explain))
        results.sort(key=lambda result: result.index)
        return results

    def score_one(self, record: object, *, explain: bool = True) -> PredictionResult | RowError:
        return self.score_batch([record], explain=explain)[0]
