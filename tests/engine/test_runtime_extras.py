"""Runtimes installed as extras: a model whose runtime cannot be imported is refused with
a problem naming the extra to install, never an ImportError.

"Not installed" is simulated in this process (the suite installs every extra): a module
set to None in `sys.modules` cannot be imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from assay.engine.errors import InvalidArtifact, RuntimeNotInstalled
from assay.engine.formats import ArtifactFormat
from assay.engine.runtimes import RUNTIMES, RuntimeEntry, import_runtime, load_runtime
from assay.engine.runtimes.lightgbm_runtime import load_lightgbm


@pytest.mark.parametrize(
    ("fmt", "module", "install"),
    [
        ("xgboost-json", "xgboost", "pip install 'assay[xgboost]'"),
        ("xgboost-ubj", "xgboost", "pip install 'assay[xgboost]'"),
        ("skops", "skops.io", "pip install 'assay[sklearn]'"),
        ("skops", "sklearn", "pip install 'assay[sklearn]'"),
        ("onnx", "onnxruntime", "reinstall assay (its base install includes it)"),
        ("lightgbm", "lightgbm", "reinstall assay (its base install includes it)"),
    ],
)
def test_a_model_whose_runtime_is_not_installed_is_refused_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
    artifacts: dict[str, bytes],
    fmt: str,
    module: str,
    install: str,
) -> None:
    data = artifacts[fmt]
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(RuntimeNotInstalled) as refused:
        load_runtime(fmt, data)
    error = refused.value
    assert isinstance(error, InvalidArtifact)  # every caller of load_runtime handles it
    assert (error.status, error.slug) == (422, "runtime-not-installed")
    library = module.partition(".")[0]
    assert error.detail == (
        f"{_entry(fmt).name} models need the {library} library, which is not installed "
        f"on this server (no module {module!r}): {install}."
    )


def test_a_runtime_library_that_fails_to_import_is_refused_without_its_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A native library that cannot load (a missing libgomp, say) raises OSError on import.
    (tmp_path / "broken_native_runtime.py").write_text(
        "raise OSError('/opt/secret/libgomp.so.1: cannot open shared object file')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = RuntimeEntry(
        name="Broken",
        formats=(ArtifactFormat.LIGHTGBM,),
        distributions=(),
        load=load_lightgbm,
        modules=("broken_native_runtime",),
        extra="broken",
    )
    with pytest.raises(RuntimeNotInstalled) as refused:
        import_runtime(entry)
    assert refused.value.detail == (
        "Broken models need the broken_native_runtime library, which is installed on this "
        "server but fails to import (OSError): pip install 'assay[broken]', or check it "
        "with python -c 'import broken_native_runtime'."
    )
    assert "/opt/secret" not in str(refused.value.detail)


def test_every_runtime_imports_once_its_library_is_there() -> None:
    for entry in RUNTIMES:
        import_runtime(entry)  # the suite installs every extra


def _entry(fmt: str) -> RuntimeEntry:
    [entry] = [e for e in RUNTIMES if ArtifactFormat(fmt) in e.formats]
    return entry
