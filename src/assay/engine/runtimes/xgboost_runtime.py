"""XGBoost models in their JSON or UBJSON formats (``Booster.save_model``/``save_raw``).

Only these documented, code-free formats are accepted (never the deprecated binary
format or a pickled Booster). The score is `inplace_predict`'s value: the probability
for ``binary:logistic``, a class column for ``multi:softprob`` (see `positive_column`),
the raw value otherwise. Contributions come from ``pred_contribs=True`` (TreeSHAP): per
feature plus a bias column, summing to the margin (log-odds for binary objectives).
"""

from __future__ import annotations

import json

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


class XGBoostRuntime:
    """A loaded XGBoost booster; XGBoost documents its prediction calls as thread-safe."""

    def __init__(
        self, data: bytes, fmt: ArtifactFormat, output: OutputSpec, threads: int = 1
    ) -> None:
        # Imported with the first XGBoost model, so a start without one does not pay for it.
        from xgboost import Booster, DMatrix  # noqa: PLC0415 - see the comment above
        from xgboost.core import XGBoostError  # noqa: PLC0415 - see the comment above

        booster = Booster()
        try:
            booster.load_model(bytearray(data))
            booster.set_param({"nthread": threads})
            config = json.loads(booster.save_config())
        except (XGBoostError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise InvalidArtifact(f"The XGBoost model could not be loaded: {reason}") from None
        self._booster = booster
        self._dmatrix = DMatrix
        self._threads = threads
        learner = config.get("learner", {})
        objective = str(learner.get("objective", {}).get("name", ""))
        classes = int(learner.get("learner_model_param", {}).get("num_class", "0") or 0)
        self._classes = classes
        self._column = 0
        if classes > 1:
            try:
                self._column = positive_column(classes, output)
            except ValueError as exc:
                raise InvalidArtifact(f"The XGBoost model: {exc}.") from None
        self._space = "log_odds" if objective.startswith("binary:") else "raw"
        names = booster.feature_names
        self._info = RuntimeInfo(
            format=fmt,
            n_features=booster.num_features(),
            feature_names=tuple(names) if names else None,
        )

    @property
    def info(self) -> RuntimeInfo:
        return self._info

    def predict(self, batch: FloatMatrix, *, contributions: bool = False) -> RuntimeOutput:
        # Feature names were compared with the vectoriser's at load; the batch is a bare
        # matrix in that same order.
        raw = np.asarray(
            self._booster.inplace_predict(batch, predict_type="value", validate_features=False),
            dtype=np.float64,
        )
        scores = raw[:, self._column] if raw.ndim == 2 else raw
        if not contributions:
            return RuntimeOutput(scores)
        matrix = self._dmatrix(batch, nthread=self._threads)
        contrib = np.asarray(
            self._booster.predict(matrix, pred_contribs=True, validate_features=False),
            dtype=np.float64,
        )
        if contrib.ndim == 3:
            contrib = contrib[:, self._column, :]
        return RuntimeOutput(scores, contrib, self._space)


def load_xgboost(
    data: bytes, fmt: ArtifactFormat, output: OutputSpec, policy: LoadPolicy
) -> XGBoostRuntime:
    return XGBoostRuntime(data, fmt, output, policy.threads)


RUNTIME = RuntimeEntry(
    name="XGBoost",
    formats=(ArtifactFormat.XGBOOST_JSON, ArtifactFormat.XGBOOST_UBJ),
    distributions=("xgboost-cpu", "xgboost"),
    load=load_xgboost,
    modules=("xgboost",),
    extra="xgboost",
)
