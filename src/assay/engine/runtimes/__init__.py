"""ML runtimes, a registry keyed by artifact format: `load_runtime(format, data, ...)`.

Each runtime is one module declaring a `RUNTIME` (`RuntimeEntry`): the formats it loads,
the distributions it reports and its loader; adding a runtime is such a module and its
entry in `RUNTIMES`. The declared format is checked against the bytes first
(`assay.engine.formats`), then the policy for formats that run code when loaded, then
any signature; only then does the format's loader run. A runtime imports its library
only when a model of its format is loaded, so starting Assay does not pay for all.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from assay.engine.errors import UntrustedArtifact
from assay.engine.formats import (
    CODE_EXECUTING_FORMATS,
    PICKLE_REFUSED,
    ArtifactFormat,
    check_artifact_format,
)
from assay.engine.integrity import verify_artifact_signature
from assay.engine.runtimes import lightgbm_runtime, onnx_runtime, sklearn_runtime, xgboost_runtime
from assay.engine.runtimes.base import (
    LoadPolicy,
    ModelRuntime,
    OutputSpec,
    RuntimeEntry,
    RuntimeInfo,
    RuntimeOutput,
)

__all__ = [
    "RUNTIMES",
    "LoadPolicy",
    "ModelRuntime",
    "OutputSpec",
    "RuntimeEntry",
    "RuntimeInfo",
    "RuntimeOutput",
    "load_runtime",
    "runtime_versions",
]

# Every runtime, in the order `runtime_versions` reports their distributions.
RUNTIMES: tuple[RuntimeEntry, ...] = (
    onnx_runtime.RUNTIME,
    lightgbm_runtime.RUNTIME,
    xgboost_runtime.RUNTIME,
    sklearn_runtime.RUNTIME,
)
_BY_FORMAT: dict[ArtifactFormat, RuntimeEntry] = {
    fmt: entry for entry in RUNTIMES for fmt in entry.formats
}
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
    if checked in CODE_EXECUTING_FORMATS:
        if not policy.allow_pickle:
            raise UntrustedArtifact(PICKLE_REFUSED)
        if signature is None:
            raise UntrustedArtifact(PICKLE_REFUSED + " This artifact has no signature.")
    if signature is not None:
        verify_artifact_signature(data, signature, policy.trusted_keys)
    elif policy.require_signatures:
        raise UntrustedArtifact("This installation requires every artifact to be signed.")
    return _BY_FORMAT[checked].load(data, checked, output, policy)


def runtime_versions() -> dict[str, str]:
    """The installed version of every runtime's distributions (those installed)."""
    found: dict[str, str] = {}
    for entry in RUNTIMES:
        for distribution in entry.distributions:
            try:
                found[distribution] = version(distribution)
            except PackageNotFoundError:
                continue
    return found
