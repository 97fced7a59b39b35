"""scikit-learn estimators from skops files, or (only when allowed and signed) pickle/joblib.

skops files are loaded without running code from the file: skops rebuilds objects from
a schema and refuses any type not on its trusted list. Beyond skops's own safe
defaults, only the types in `LoadPolicy.skops_trusted_types` (an operator decision,
never the uploader's) are accepted; a file that needs any other type is refused and
the refusal names the types.

Pickle and joblib files run arbitrary code while loading. They are refused unless the
operator passed ``allow_pickle=True`` *and* the artifact carries a valid Ed25519
signature from a trusted publisher key (`load_runtime` checks both); only then are the
bytes unpickled.

Scores come from `predict_proba` (a class column), `decision_function` or `predict`
(`OutputSpec.method`). Contributions are given for bare linear models (``coef_`` and
``intercept_``): ``coef_j * x_j`` per feature and the intercept as bias, in log-odds
for classifiers. Pipelines and other estimators have none; the explanation says so.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from assay.engine.errors import InvalidArtifact, UntrustedArtifact
from assay.engine.formats import PICKLE_REFUSED, ArtifactFormat
from assay.engine.runtimes.base import (
    FloatMatrix,
    LoadPolicy,
    OutputSpec,
    RuntimeEntry,
    RuntimeInfo,
    RuntimeOutput,
    positive_column,
)

NO_CONTRIBUTIONS = (
    "Only bare linear models expose per-feature contributions; this estimator "
    "(a pipeline or a non-linear model) does not."
)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


class SklearnRuntime:
    """A loaded estimator. scikit-learn's prediction methods do not mutate the estimator."""

    def __init__(self, estimator: Any, fmt: ArtifactFormat, output: OutputSpec) -> None:
        self._estimator = estimator
        method = output.method or (
            "predict_proba" if hasattr(estimator, "predict_proba") else "predict"
        )
        if not callable(getattr(estimator, method, None)):
            raise InvalidArtifact(f"The estimator has no {method} method.")
        self._method = getattr(estimator, method)
        self._proba = method == "predict_proba"
        raw_classes = getattr(estimator, "classes_", None)
        classes = tuple(raw_classes.tolist()) if raw_classes is not None else None
        self._column = 0
        if self._proba:
            try:
                self._column = positive_column(len(classes or (0, 1)), output, classes)
            except ValueError as exc:
                raise InvalidArtifact(f"The estimator: {exc}.") from None
        self._coef, self._intercept = self._linear_terms(estimator)
        n_features = getattr(estimator, "n_features_in_", None)
        names = getattr(estimator, "feature_names_in_", None)
        self._info = RuntimeInfo(
            format=fmt,
            n_features=int(n_features) if n_features is not None else None,
            feature_names=tuple(str(n) for n in names) if names is not None else None,
            contributions_note=None if self._coef is not None else NO_CONTRIBUTIONS,
        )
        self._space = "log_odds" if hasattr(estimator, "predict_proba") else "raw"

    @staticmethod
    def _linear_terms(estimator: Any) -> tuple[np.ndarray[Any, Any] | None, float]:
        coef = getattr(estimator, "coef_", None)
        if not isinstance(coef, np.ndarray) or coef.ndim not in (1, 2):
            return None, 0.0
        if coef.ndim == 2:
            if coef.shape[0] != 1:
                return None, 0.0  # multiclass: one row of weights per class
            coef = coef[0]
        intercept = np.asarray(getattr(estimator, "intercept_", 0.0), dtype=np.float64).ravel()
        return coef.astype(np.float64), float(intercept[0]) if intercept.size else 0.0

    @property
    def info(self) -> RuntimeInfo:
        return self._info

    def predict(self, batch: FloatMatrix, *, contributions: bool = False) -> RuntimeOutput:
        raw = np.asarray(self._method(batch), dtype=np.float64)
        scores = raw[:, self._column] if raw.ndim == 2 else raw
        if not contributions or self._coef is None:
            return RuntimeOutput(scores)
        terms = batch * self._coef
        bias = np.full((len(batch), 1), self._intercept)
        return RuntimeOutput(scores, np.hstack([terms, bias]), self._space)


def load_skops_runtime(data: bytes, output: OutputSpec, policy: LoadPolicy) -> SklearnRuntime:
    """Load a skops file, refusing any type outside skops's defaults and the operator's list."""
    # Imported with the first skops model, so a start without one does not pay for it.
    import skops.io as sio  # noqa: PLC0415 - see the comment above

    try:
        untrusted = [str(t) for t in sio.get_untrusted_types(data=data)]
    except Exception as exc:  # noqa: BLE001 - malformed files fail in many ways inside skops
        raise InvalidArtifact(f"The skops file could not be read: {_short(exc)}") from None
    refused = sorted(set(untrusted) - set(policy.skops_trusted_types))
    if refused:
        raise UntrustedArtifact(
            "The skops file contains types that are not trusted: " + ", ".join(refused[:20]),
            extra={"untrusted_types": refused},
        )
    try:
        estimator = sio.loads(data, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001 - malformed files fail in many ways inside skops
        raise InvalidArtifact(f"The skops file could not be loaded: {_short(exc)}") from None
    return SklearnRuntime(estimator, ArtifactFormat.SKOPS, output)


def load_pickle_runtime(data: bytes, output: OutputSpec, policy: LoadPolicy) -> SklearnRuntime:
    """Unpickle bytes that `load_runtime` admitted: the operator allows pickle and a
    trusted publisher signed exactly these bytes."""
    if not policy.allow_pickle:
        # Checked again where the code would run, so no other caller can unpickle.
        raise UntrustedArtifact(PICKLE_REFUSED)
    # Imported only for the rare, opted-in pickle artifact.
    import joblib  # noqa: PLC0415 - see the comment above

    try:
        # Reached only for bytes signed by a publisher the operator trusts, after the
        # operator opted in to pickle: the one path where unpickling is accepted.
        estimator = joblib.load(io.BytesIO(data))  # nosemgrep: assay-unsafe-deserialisation
    except Exception as exc:  # noqa: BLE001 - unpickling can fail in any way
        raise InvalidArtifact(f"The pickle could not be loaded: {_short(exc)}") from None
    return SklearnRuntime(estimator, ArtifactFormat.PICKLE, output)


def load_sklearn(
    data: bytes, fmt: ArtifactFormat, output: OutputSpec, policy: LoadPolicy
) -> SklearnRuntime:
    if fmt is ArtifactFormat.PICKLE:
        return load_pickle_runtime(data, output, policy)
    return load_skops_runtime(data, output, policy)


RUNTIME = RuntimeEntry(
    name="scikit-learn",
    formats=(ArtifactFormat.SKOPS, ArtifactFormat.PICKLE),
    distributions=("scikit-learn", "skops"),
    load=load_sklearn,
    modules=("sklearn", "skops.io", "joblib"),
    extra="sklearn",
)
