"""The one interface every kind of model scores through.

An engine receives validated, derived records (plain mappings of field values, as
`InputSchema.validate` produced them) in a batch, and returns one outcome per record
in the same order: an `EngineScore`, or a `FieldError` when that record could not be
scored. ML models, rules and ensembles are all engines, so an ensemble can combine any
of them and the `Scorer` wraps any of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from assay.engine.explanations import Explanation
from assay.engine.results import FieldError
from assay.engine.schema.definition import FieldSpec


@dataclass(frozen=True, slots=True)
class EngineScore:
    """A record's score and, when asked for, its explanation."""

    score: float
    explanation: Explanation | None


EngineOutcome = EngineScore | FieldError


class ScoringEngine(Protocol):
    """What `Scorer` and `Ensemble` need from a model. Implementations are immutable."""

    @property
    def kind(self) -> str:
        """`ml`, `rules` or `ensemble`."""

    @property
    def fields(self) -> Mapping[str, FieldSpec]:
        """The fields the engine reads, as declared in the schema it was compiled with."""

    def score(
        self, rows: Sequence[Mapping[str, Any]], *, explain: bool = True
    ) -> list[EngineOutcome]:
        """Score every row; one outcome per row, in order."""
