"""What every ML runtime takes and gives, the options that shape loading, and how a
runtime declares itself to the registry (`RuntimeEntry`).

A runtime is loaded once from artifact bytes and then called with 2-D float64 batches
(rows x features, columns in the model's feature order). It returns one score per row
and, where the model family allows, additive per-feature contributions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from assay.engine.formats import ArtifactFormat
from assay.engine.integrity import TrustedPublisherKey

FloatMatrix = npt.NDArray[np.float64]
FloatVector = npt.NDArray[np.float64]


class OutputSpec(BaseModel):
    """Which model output is the score.

    - `name`: ONNX output to read (default: the one whose name mentions "prob", else the
      only output).
    - `class_index`: column of a probability matrix (default 1 for two classes, the
      positive class; required for more).
    - `class_label`: the class whose probability is the score, by label (ONNX ZipMap
      keys, scikit-learn `classes_`); overrides `class_index`.
    - `method`: scikit-learn estimators: `predict_proba` (default when available),
      `decision_function` or `predict`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, max_length=200)
    class_index: int | None = Field(None, ge=0, le=10_000)
    class_label: int | str | None = None
    method: Literal["predict_proba", "decision_function", "predict"] | None = None


@dataclass(frozen=True, slots=True)
class LoadPolicy:
    """Operator decisions that apply when loading any artifact.

    `allow_pickle` admits pickle/joblib files, and then only with a valid signature
    from one of `trusted_keys`. `require_signatures` demands a valid signature for every
    format. `skops_trusted_types` are the extra types a skops file may contain beyond
    skops's own safe defaults. `threads` bounds each model call's native threads:
    concurrency comes from the caller's thread pool and micro-batching.
    """

    allow_pickle: bool = False
    require_signatures: bool = False
    trusted_keys: tuple[TrustedPublisherKey, ...] = ()
    skops_trusted_types: tuple[str, ...] = ()
    threads: int = 1


@dataclass(frozen=True, slots=True)
class RuntimeOutput:
    """Scores (n,) and optionally contributions (n, features + 1; the last column is the bias)."""

    scores: FloatVector
    contributions: FloatMatrix | None = None
    space: str | None = None


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    """Static facts about a loaded model, for checks at load and for explanations."""

    format: ArtifactFormat
    n_features: int | None
    feature_names: tuple[str, ...] | None = None
    contributions_note: str | None = field(default=None)


class ModelRuntime(Protocol):
    """A loaded ML model. Implementations are immutable after loading and thread-safe."""

    @property
    def info(self) -> RuntimeInfo:
        """Format, expected feature count and names, and why contributions are absent."""

    def predict(self, batch: FloatMatrix, *, contributions: bool = False) -> RuntimeOutput:
        """Score a (rows, features) float64 batch."""


# How a runtime loads an artifact whose bytes were checked to be in one of its formats
# (and whose signature, when there is one, was verified): (bytes, format, output, policy).
RuntimeLoader = Callable[[bytes, ArtifactFormat, OutputSpec, LoadPolicy], ModelRuntime]


@dataclass(frozen=True, slots=True)
class RuntimeEntry:
    """What a runtime module declares: its name, the artifact formats it loads, the Python
    distributions it reports (`GET /v1/system/info`), its loader, which imports the
    runtime's library only when a model of one of those formats is first loaded, the
    `modules` that library consists of, and `extra`: the `assay[...]` extra that installs
    it (None: it is part of Assay's base install)."""

    name: str
    formats: tuple[ArtifactFormat, ...]
    distributions: tuple[str, ...]
    load: RuntimeLoader
    modules: tuple[str, ...]
    extra: str | None = None


def positive_column(
    n_columns: int, output: OutputSpec, classes: tuple[object, ...] | None = None
) -> int:
    """The column of a (rows, classes) output that is the score; `ValueError` if unclear."""
    if output.class_label is not None:
        if classes is None:
            raise ValueError("class_label needs a model that reports its class labels")
        matches = [
            i
            for i, c in enumerate(classes)
            if c == output.class_label or str(c) == str(output.class_label)
        ]
        if not matches:
            raise ValueError(
                f"class_label {output.class_label!r} is not one of the model's classes"
            )
        return matches[0]
    if output.class_index is not None:
        if output.class_index >= n_columns:
            raise ValueError(
                f"class_index {output.class_index} but the output has {n_columns} columns"
            )
        return output.class_index
    if n_columns == 1:
        return 0
    if n_columns == 2:
        return 1
    raise ValueError(
        f"the output has {n_columns} classes; say which one is the score (class_index)"
    )
