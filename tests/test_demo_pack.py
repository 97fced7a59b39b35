"""Where `assay demo` finds its pack and trains it: an installed Assay (no checkout next
to it) uses the pack shipped in its wheel, and trains a copy in the data directory,
never writing into the installed package."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from assay import __version__, demo
from assay.settings import Settings
from tests.support.engine import PACK_DIR

ARTIFACTS = ["startup_success_lgbm.txt", "startup_success_logreg.onnx"]


def _installed_assay(root: Path) -> Path:
    """A package directory as a wheel installs it: assay/ with the pack as package data."""
    package = root / "venv" / "lib" / "python3.11" / "site-packages" / "assay"
    shutil.copytree(
        PACK_DIR,
        package / "examples" / "startup_success",
        ignore=shutil.ignore_patterns("build", "__pycache__"),
    )
    return package


def test_an_installed_assay_trains_a_copy_of_its_pack_in_the_data_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings_factory: Callable[..., Settings],
) -> None:
    package = _installed_assay(tmp_path)
    installed = package / "examples" / "startup_success"
    shipped = sorted(p.relative_to(installed) for p in installed.rglob("*"))
    monkeypatch.setattr(demo, "_PACKAGE_DIR", package)
    monkeypatch.chdir(tmp_path)
    assert demo.find_default_pack() == installed

    settings = settings_factory()
    trained = demo.prepare_pack(installed, settings)
    assert trained == settings.data_dir / "demo" / f"startup_success-{__version__}"
    assert sorted(p.name for p in (trained / "build").iterdir()) == ARTIFACTS
    # The installed package is exactly as the wheel put it.
    assert sorted(p.relative_to(installed) for p in installed.rglob("*")) == shipped

    # A second run keeps what the first trained.
    stamps = [os.stat(trained / "build" / name).st_mtime_ns for name in ARTIFACTS]
    assert demo.prepare_pack(installed, settings) == trained
    assert [os.stat(trained / "build" / name).st_mtime_ns for name in ARTIFACTS] == stamps


def test_a_training_script_that_needs_a_missing_module_is_one_line(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(PACK_DIR, pack, ignore=shutil.ignore_patterns("build", "__pycache__"))
    (pack / "train.py").write_text("import assay_no_such_training_library\n")
    with pytest.raises(demo.DemoUnavailable) as refused:
        demo.ensure_trained(pack)
    assert str(refused.value) == (
        f"{pack / 'train.py'} needs the module 'assay_no_such_training_library', "
        "which is not installed"
    )
