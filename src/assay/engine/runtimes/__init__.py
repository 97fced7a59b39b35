"""ML runtimes, a registry keyed by artifact format: `load_runtime(format, data, ...)`.

Each runtime is one module declaring a `RUNTIME` (`RuntimeEntry`): the formats it loads,
the distributions it reports and its loader; adding a runtime is such a module and its
entry in `RUNTIMES`. The declared format is checked against the bytes first
(`assay.engine.formats`), then the policy for formats that run code when loaded, then
any signature; only then does the format's loader run. A runtime imports its library
only when a model of its format is loaded, so starting Assay does not pay for all, and a
runtime installed as an extra (`RuntimeEntry.extra`) may be absent: its models are then
refused with `RuntimeNotInstalled`, which names the extra to install.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from assay.engine.errors import RuntimeNotInstalled, UntrustedArtifact
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
    "import_runtime",
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

    Raises `InvalidArtifact` (wrong format, archive, unloadable bytes; its subclass
    `RuntimeNotInstalled` when the format's runtime cannot be imported here) or
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
    entry = _BY_FORMAT[checked]
    import_runtime(entry)
    return entry.load(data, checked, output, policy)


def import_runtime(entry: RuntimeEntry) -> None:
    """Import a runtime's library, or raise `RuntimeNotInstalled` saying what to install."""
    install = (
        f"pip install 'assay[{entry.extra}]'"
        if entry.extra
        else "reinstall assay (its base install includes it)"
    )
    for module in entry.modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            msg = (
                f"{entry.name} models need the {module.partition('.')[0]} library, which is "
                f"not installed on this server (no module {exc.name!r}): {install}."
            )
            raise RuntimeNotInstalled(msg) from None
        except Exception as exc:  # noqa: BLE001 - a native library fails to load in many ways
            # Only the exception's type: its message may hold the server's file paths.
            msg = (
                f"{entry.name} models need the {module.partition('.')[0]} library, which is "
                f"installed on this server but fails to import ({type(exc).__name__}): "
                f"{install}, or check it with python -c 'import {module}'."
            )
            raise RuntimeNotInstalled(msg) from None


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
