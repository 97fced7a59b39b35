"""ML runtimes, loaded from bytes only: `load_runtime(format, data, ...)`.

The declared format is checked against the bytes first (`assay.engine.formats`), then
any signature, then the format's loader runs. Each loader module imports its library
only when a model of that format is loaded, so starting Assay does not pay for all.
"""

from __future__ import annotations

from assay.engine.errors import UntrustedArtifact
from assay.engine.formats import ArtifactFormat, check_artifact_format
from assay.engine.integrity import verify_artifact_signature
from assay.engine.runtimes.base import (
    LoadPolicy,
    ModelRuntime,
    OutputSpec,
    RuntimeInfo,
    RuntimeOutput,
)

__all__ = [
    "LoadPolicy",
    "ModelRuntime",
    "OutputSpec",
    "RuntimeInfo",
    "RuntimeOutput",
    "load_runtime",
]

_DEFAULT_OUTPUT = OutputSpec()
_DEFAULT_POLICY = LoadPolicy()


def load_runtime(
    fmt: ArtifactFormat | str,
    data: bytes,
    *,
    output: OutputSpec = _DEFAULT_OUTPUT,
    policy: LoadPolicy = _DEFAULT_POLICY,
    signature: bytes | str | None = None,
) -> ModelRuntime:
    """Load a model from artifact bytes after checking format, signature and policy.

    Raises `InvalidArtifact` (wrong format, archive, unloadable bytes) or
    `UntrustedArtifact` (pickle not allowed, signature missing or invalid, untrusted
    skops types). A given signature is always verified, whatever the format.
    """
    checked = check_artifact_format(fmt, data)
    if checked is ArtifactFormat.PICKLE:
        from assay.engine.runtimes.sklearn_runtime import load_pickle_runtime

        return load_pickle_runtime(data, output, policy, signature)
    if signature is not None:
        verify_artifact_signature(data, signature, policy.trusted_keys)
    elif policy.require_signatures:
        raise UntrustedArtifact("This installation requires every artifact to be signed.")
    if checked is ArtifactFormat.ONNX:
        from assay.engine.runtimes.onnx_runtime import OnnxRuntime

        return OnnxRuntime(data, output, policy.threads)
    if checked is ArtifactFormat.LIGHTGBM:
        from assay.engine.runtimes.lightgbm_runtime import LightGBMRuntime

        return LightGBMRuntime(data, output, policy.threads)
    if checked in (ArtifactFormat.XGBOOST_JSON, ArtifactFormat.XGBOOST_UBJ):
        from assay.engine.runtimes.xgboost_runtime import XGBoostRuntime

        return XGBoostRuntime(data, checked, output, policy.threads)
    from assay.engine.runtimes.sklearn_runtime import load_skops_runtime

    return load_skops_runtime(data, output, policy)
