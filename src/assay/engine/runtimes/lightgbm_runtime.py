"""LightGBM models from their text format (``Booster.model_to_string`` / ``save_model``).

LightGBM's JSON (``dump_model``) is a description LightGBM itself cannot load back,
so only the text format is accepted. The score is `predict`'s output: the probability
for binary objectives, a column of the class-probability matrix for multiclass ones
(see `positive_column`), the raw value for regression. Contributions come from
``pred_contrib=True`` (TreeSHAP): per feature plus a bias column, summing to the raw
score (log-odds for binary objectives).
"""

from __future__ import annotations

import numpy as np

from assay.engine.errors import InvalidArtifact
from assay.engine.formats import ArtifactFormat
from assay.engine.runtimes.base import (
    FloatMatrix,
    LoadPolicy,
    OutputSpec,
    RuntimeEntry,
    RuntimeInfo,
    RuntimeOutput,
    positive_column,
)


def _objective(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("objective="):
            return line.removeprefix("objective=").split(" ", 1)[0]
        if line.startswith("Tree="):
            break
    return ""


def _default_names(names: list[str]) -> bool:
    return all(name == f"Column_{i}" for i, name in enumerate(names))


class LightGBMRuntime:
    """A loaded LightGBM booster; predictions are read-only and safe across threads."""

    def __init__(self, data: bytes, output: OutputSpec, threads: int = 1) -> None:
        # Imported with the first LightGBM model, so a start without one does not pay for it.
        from lightgbm import Booster  # noqa: PLC0415 - see the comment above
        from lightgbm.basic import LightGBMError  # noqa: PLC0415 - see the comment above

        try:
            text = data.decode("utf-8")
            booster = Booster(model_str=text)
        except (UnicodeDecodeError, LightGBMError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise InvalidArtifact(f"The LightGBM model could not be loaded: {reason}") from None
        self._booster = booster
        self._threads = threads
        objective = _objective(text)
        self._classes = booster.num_model_per_iteration()
        self._column = 0
        if self._classes > 1:
            try:
                self._column = positive_column(self._classes, output)
            except ValueError as exc:
                raise InvalidArtifact(f"The LightGBM model: {exc}.") from None
        self._space = "log_odds" if objective.startswith(("binary", "cross_entropy")) else "raw"
        names = booster.feature_name()
        self._info = RuntimeInfo(
            format=ArtifactFormat.LIGHTGBM,
            n_features=booster.num_feature(),
            feature_names=None if _default_names(names) else tuple(names),
        )

    @property
    def info(self) -> RuntimeInfo:
        return self._info

    def predict(self, batch: FloatMatrix, *, contributions: bool = False) -> RuntimeOutput:
        raw = np.asarray(self._booster.predict(batch, num_threads=self._threads), dtype=np.float64)
        scores = raw[:, self._column] if raw.ndim == 2 else raw
        if not contributions:
            return RuntimeOutput(scores)
        contrib = np.asarray(
            self._booster.predict(batch, pred_contrib=True, num_threads=self._threads),
            dtype=np.float64,
        )
        if self._classes > 1:
            # Multiclass contributions are laid out class by class: (features + 1) each.
            width = contrib.shape[1] // self._classes
            contrib = contrib[:, self._column * width : (self._column + 1) * width]
        return RuntimeOutput(scores, contrib, self._space)


def load_lightgbm(
    data: bytes, fmt: ArtifactFormat, output: OutputSpec, policy: LoadPolicy
) -> LightGBMRuntime:
    return LightGBMRuntime(data, output, policy.threads)


RUNTIME = RuntimeEntry(
    name="LightGBM",
    formats=(ArtifactFormat.LIGHTGBM,),
    distributions=("lightgbm",),
    load=load_lightgbm,
    modules=("lightgbm",),
)
