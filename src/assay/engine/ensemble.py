"""Ensembles: a weighted combination of other models' scores, with optional caps and ceilings.

Definition (see docs/models.md, "Ensembles")::

    components:
      - {model: startup-success-lgbm, weight: 0.35}
      - {model: capital-pillar, weight: 0.10, max_score: 0.9}
    ceilings:
      - {component: capital-pillar, below: 0.2, max_score: 0.49}

Weights must be positive; they are normalised to sum to 1 (the explanation shows the
normalised ones). For one record:

1. each component's score is clamped into its own ``[min_score, max_score]`` cap,
   giving its *effective* score;
2. ``uncapped = sum(weight_i * effective_i)``;
3. every ceiling whose component scored below ``below`` limits the result to its
   ``max_score``; the lowest applicable limit wins: ``score = min(uncapped, limit)``.

The identity ``score == sum(contribution_i)`` always holds (to floating-point
tolerance). Component caps keep it by construction: contributions are computed from
effective scores, and the explanation shows both the raw and the effective score.
A ceiling keeps it by scaling every contribution by ``score / uncapped``; the
explanation names the ceiling and gives `uncapped_score`.

If any component cannot score a record, the ensemble does not score it either: a
partial weighted sum would be a different model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assay.engine.base import EngineOutcome, EngineScore, ScoringEngine
from assay.engine.definition_errors import DefinitionProblems, join_path
from assay.engine.explanations import ComponentScore, EnsembleExplanation, Explanation
from assay.engine.results import FieldError
from assay.engine.rules.definition import RULE_ID_PATTERN
from assay.engine.schema.definition import FieldSpec
from assay.engine.schema.input_schema import InputSchema

_DOCUMENT = "ensemble"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _finite(*values: float | None) -> bool:
    return all(v is None or math.isfinite(v) for v in values)


class ComponentSpec(_Strict):
    """One component: a model by name, weight and cap.

    The registry pins the version when the ensemble is registered: `version` if given,
    else the version `alias` points at (default ``production``) at that moment.
    """

    model: str = Field(min_length=1, max_length=128)
    version: int | None = Field(None, ge=1)
    alias: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    weight: float = Field(gt=0)
    min_score: float | None = None
    max_score: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ComponentSpec:
        if self.version is not None and self.alias is not None:
            raise ValueError("give a component's version or its alias, not both")
        if not _finite(self.weight, self.min_score, self.max_score):
            raise ValueError("weight and caps must be finite")
        if (
            self.min_score is not None
            and self.max_score is not None
            and self.min_score > self.max_score
        ):
            raise ValueError("min_score is above max_score")
        return self


class CeilingSpec(_Strict):
    """When `component` scores below `below`, the ensemble's score is at most `max_score`."""

    id: str | None = Field(None, pattern=RULE_ID_PATTERN)
    component: str
    below: float
    max_score: float = Field(ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> CeilingSpec:
        if not _finite(self.below, self.max_score):
            raise ValueError("below and max_score must be finite")
        return self


class EnsembleDefinition(_Strict):
    components: list[ComponentSpec] = Field(min_length=1, max_length=50)
    ceilings: list[CeilingSpec] = Field(default_factory=list, max_length=50)


@dataclass(frozen=True, slots=True)
class _Component:
    name: str
    engine: ScoringEngine
    weight: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class _Ceiling:
    label: str
    component: int
    below: float
    max_score: float


class Ensemble:
    """A compiled ensemble; a `ScoringEngine`. Immutable and thread-safe."""

    kind = "ensemble"

    def __init__(
        self,
        definition: EnsembleDefinition,
        components: tuple[_Component, ...],
        ceilings: tuple[_Ceiling, ...],
    ) -> None:
        self.definition = definition
        self._components = components
        self._ceilings = ceilings
        fields: dict[str, FieldSpec] = {}
        for component in components:
            fields.update(component.engine.fields)
        self._fields = fields

    @property
    def fields(self) -> Mapping[str, FieldSpec]:
        return self._fields

    @property
    def weights(self) -> dict[str, float]:
        """Normalised weights by component name."""
        return {c.name: c.weight for c in self._components}

    def score(
        self, rows: Sequence[Mapping[str, Any]], *, explain: bool = True
    ) -> list[EngineOutcome]:
        # One vectorised call per component for the whole batch, then combine per row.
        per_component = [c.engine.score(rows, explain=explain) for c in self._components]
        return [
            self._combine([outcomes[i] for outcomes in per_component], explain)
            for i in range(len(rows))
        ]

    def _combine(self, outcomes: list[EngineOutcome], explain: bool) -> EngineOutcome:
        scores: list[float] = []
        for component, outcome in zip(self._components, outcomes, strict=True):
            if isinstance(outcome, FieldError):
                return FieldError(
                    outcome.field, outcome.code, f"component {component.name!r}: {outcome.message}"
                )
            scores.append(outcome.score)
        effective = [
            min(c.high, max(c.low, s)) for c, s in zip(self._components, scores, strict=True)
        ]
        contributions = [c.weight * e for c, e in zip(self._components, effective, strict=True)]
        uncapped = math.fsum(contributions)
        final, ceiling = uncapped, None
        for rule in self._ceilings:
            if scores[rule.component] < rule.below and rule.max_score < final:
                final, ceiling = rule.max_score, rule.label
        if not explain:
            return EngineScore(final, None)
        if ceiling is not None:
            factor = final / uncapped  # uncapped > final >= 0 here
            contributions = [c * factor for c in contributions]
        parts = tuple(
            ComponentScore(
                name=c.name,
                score=s,
                effective_score=e,
                weight=c.weight,
                contribution=share,
                explanation=_explanation_of(outcome),
            )
            for c, s, e, share, outcome in zip(
                self._components, scores, effective, contributions, outcomes, strict=True
            )
        )
        return EngineScore(final, EnsembleExplanation(parts, uncapped, ceiling))


def _explanation_of(outcome: EngineOutcome) -> Explanation:
    if isinstance(outcome, EngineScore) and outcome.explanation is not None:
        return outcome.explanation
    raise RuntimeError("a component gave no explanation although one was asked for")


def compile_ensemble(
    document: Mapping[str, Any] | EnsembleDefinition,
    components: Mapping[str, ScoringEngine],
    schema: InputSchema,
) -> Ensemble:
    """Check an ensemble against its components and schema, and compile it.

    `components` maps each component's `model` name to its loaded engine (the
    registry resolves names to pinned versions). Every field a component reads must
    exist in `schema` with the same type, since records are validated once, by the
    ensemble's schema, and handed to every component.
    """
    problems = DefinitionProblems(_DOCUMENT)
    if isinstance(document, EnsembleDefinition):
        definition = document
    else:
        try:
            definition = EnsembleDefinition.model_validate(document)
        except ValidationError as exc:
            problems.add_pydantic(exc, document)
            raise problems.error() from None
    total = math.fsum(spec.weight for spec in definition.components)
    compiled: list[_Component] = []
    index_of: dict[str, int] = {}
    for i, spec in enumerate(definition.components):
        path = join_path("components", i)
        if spec.model in index_of:
            problems.add(join_path(path, "model"), "component listed twice", spec.model)
            continue
        engine = components.get(spec.model)
        if engine is None:
            problems.add(join_path(path, "model"), "no such model", spec.model)
            continue
        _check_fields(engine, schema, problems, path, spec.model)
        index_of[spec.model] = len(compiled)
        compiled.append(
            _Component(
                name=spec.model,
                engine=engine,
                weight=spec.weight / total,
                low=-math.inf if spec.min_score is None else spec.min_score,
                high=math.inf if spec.max_score is None else spec.max_score,
            )
        )
    ceilings: list[_Ceiling] = []
    for i, ceiling in enumerate(definition.ceilings):
        if ceiling.component not in index_of:
            problems.add(
                join_path("ceilings", i, "component"), "not a component", ceiling.component
            )
            continue
        label = ceiling.id or f"{ceiling.component} below {ceiling.below:g}"
        ceilings.append(
            _Ceiling(label, index_of[ceiling.component], ceiling.below, ceiling.max_score)
        )
    problems.raise_if_any()
    return Ensemble(definition, tuple(compiled), tuple(ceilings))


def _check_fields(
    engine: ScoringEngine,
    schema: InputSchema,
    problems: DefinitionProblems,
    path: str,
    name: str,
) -> None:
    for field, wanted in engine.fields.items():
        have = schema.fields.get(field)
        if have is None:
            problems.add(path, f"reads field {field!r}, which the ensemble's schema lacks", name)
        elif _meaning(have) != _meaning(wanted):
            problems.add(
                path,
                f"was built for a different definition of field {field!r} than the "
                "ensemble's schema (type, range, enum or derivation differ)",
                name,
            )


def _meaning(spec: FieldSpec) -> dict[str, Any]:
    # Descriptions, units and the PII flag do not change what a value means to a model.
    return spec.model_dump(exclude={"description", "unit", "pii"})
