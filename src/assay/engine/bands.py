"""Bands: named score thresholds that turn a score into a verdict label and a risk level.

A band set is an ordered list. Every band but the last has one bound, all in the same
direction; the last has none and catches the rest::

    verdict:
      - {label: PASS, at_least: 0.7}
      - {label: CONDITIONAL PASS, at_least: 0.5}
      - {label: FAIL}
    risk:
      - {label: high, below: 0.3}
      - {label: medium, below: 0.7}
      - {label: low}

``at_least`` bands are tried from the highest threshold down (score >= threshold),
``below`` bands from the lowest up (score < threshold): 0.7 is a PASS and medium risk.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assay.engine.definition_errors import DefinitionProblems, join_path

_DOCUMENT = "bands"


class BandSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1, max_length=64)
    at_least: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> BandSpec:
        if self.at_least is not None and self.below is not None:
            raise ValueError("give at_least or below, not both")
        bound = self.at_least if self.at_least is not None else self.below
        if bound is not None and not math.isfinite(bound):
            raise ValueError("thresholds must be finite")
        return self


class BandsDefinition(BaseModel):
    """The `bands` entry of a model: an optional verdict set and an optional risk set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: list[BandSpec] | None = Field(None, min_length=2, max_length=20)
    risk: list[BandSpec] | None = Field(None, min_length=2, max_length=20)


class BandSet:
    """One compiled band set."""

    __slots__ = ("_ascending", "_fallback", "_thresholds", "labels")

    def __init__(self, specs: Sequence[BandSpec]) -> None:
        bounded = specs[:-1]
        self._ascending = bounded[0].below is not None
        self._thresholds: tuple[tuple[float, str], ...] = tuple(
            (
                (spec.below if self._ascending else spec.at_least) or 0.0,
                spec.label,
            )
            for spec in bounded
        )
        self._fallback = specs[-1].label
        self.labels = tuple(spec.label for spec in specs)

    def classify(self, score: float) -> str:
        if self._ascending:
            for threshold, label in self._thresholds:
                if score < threshold:
                    return label
        else:
            for threshold, label in self._thresholds:
                if score >= threshold:
                    return label
        return self._fallback


class Bands:
    """A model's verdict and risk band sets (either may be absent)."""

    __slots__ = ("definition", "risk", "verdict")

    def __init__(self, definition: BandsDefinition) -> None:
        self.definition = definition
        self.verdict = BandSet(definition.verdict) if definition.verdict else None
        self.risk = BandSet(definition.risk) if definition.risk else None

    def classify(self, score: float) -> tuple[str | None, str | None]:
        """(verdict label, risk label) for a score."""
        return (
            self.verdict.classify(score) if self.verdict else None,
            self.risk.classify(score) if self.risk else None,
        )


NO_BANDS = Bands(BandsDefinition())


def _check_set(name: str, specs: Sequence[BandSpec], problems: DefinitionProblems) -> None:
    labels = [spec.label for spec in specs]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            problems.add(join_path(name, i, "label"), "duplicate label", label)
    last = specs[-1]
    if last.at_least is not None or last.below is not None:
        problems.add(join_path(name, len(specs) - 1), "the last band takes no bound", last.label)
    bounded = specs[:-1]
    if any(spec.at_least is None and spec.below is None for spec in bounded):
        problems.add(name, "only the last band may omit its bound")
        return
    ascending = bounded[0].below is not None
    if any((spec.below is not None) != ascending for spec in bounded):
        problems.add(name, "use at_least for every band or below for every band, not both")
        return
    values = [(spec.below if ascending else spec.at_least) or 0.0 for spec in bounded]
    if ascending and not all(a < b for a, b in itertools.pairwise(values)):
        problems.add(name, "below thresholds must increase from band to band")
    if not ascending and not all(a > b for a, b in itertools.pairwise(values)):
        problems.add(name, "at_least thresholds must decrease from band to band")


def compile_bands(document: Mapping[str, Any] | BandsDefinition | None) -> Bands:
    """Check and compile a bands document; `InvalidModelDefinition` lists every problem."""
    if document is None:
        return NO_BANDS
    problems = DefinitionProblems(_DOCUMENT)
    if isinstance(document, BandsDefinition):
        definition = document
    else:
        try:
            definition = BandsDefinition.model_validate(document)
        except ValidationError as exc:
            problems.add_pydantic(exc, document)
            raise problems.error() from None
    for name in ("verdict", "risk"):
        specs = getattr(definition, name)
        if specs:
            _check_set(name, specs, problems)
    problems.raise_if_any()
    return Bands(definition)
