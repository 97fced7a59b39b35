"""The package as users install it: what the wheel holds, what starting Assay imports,
and the declared dependency ranges (ADR 0015).

The lock-free install itself (a fresh venv, today's releases, serve, demo, predict) is
`make smoke`, run by CI; these are the checks that need no network.
"""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from assay.core.tracing import OTEL, SENTRY
from assay.engine.runtimes import RUNTIMES
from assay.http.docs import ASSET_TYPES
from tests.conftest import IN_CI

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PACK = REPO / "examples" / "startup_success"
CONSOLE_BUILD = REPO / "src" / "assay" / "console" / "static"
# Projects whose next major is not where breaking changes wait (ADR 0015).
UNBOUNDED = {"cryptography"}
# What the optional integrations and runtimes import; starting Assay imports none of them.
# (opentelemetry's API is not among them: FastAPI itself depends on it.)
OPTIONAL_MODULES = (
    "sentry_sdk",
    "opentelemetry.exporter",
    "opentelemetry.instrumentation",
    "xgboost",
    "sklearn",
    "skops",
    "joblib",
    # In the base install, but imported with the first model of their format.
    "lightgbm",
    "onnxruntime",
    OTEL.module,
    SENTRY.module,
)


def _source_files(directory: Path) -> set[str]:
    return {
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and not {"build", "__pycache__"} & set(path.parts)
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel, built from a copy of the sources in which the example pack was trained
    (the trained artifacts and byte code must stay out)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE", ".gitignore"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PACK, source / "examples" / PACK.name, ignore=shutil.ignore_patterns("build"))
    trained = source / "examples" / PACK.name / "build"
    trained.mkdir()
    (trained / "startup_success_logreg.onnx").write_bytes(b"trained, never shipped")
    (source / "examples" / PACK.name / "__pycache__").mkdir()
    (source / "examples" / PACK.name / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"")
    dist = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend comes from the dev install, not from the network.
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, source],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [path] = dist.glob("assay-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_ships_the_example_pack_without_its_trained_artifacts(
    wheel: zipfile.ZipFile,
) -> None:
    prefix = f"assay/examples/{PACK.name}/"
    shipped = {name.removeprefix(prefix) for name in wheel.namelist() if name.startswith(prefix)}
    assert shipped == _source_files(PACK)
    assert {"manifest.yaml", "train.py", "profiles/series_a.json"} <= shipped


def test_the_wheel_ships_the_built_console_with_its_hashed_assets(wheel: zipfile.ZipFile) -> None:
    # Git ignores the build (a build output), so only the `artifacts` rule brings it in.
    if not CONSOLE_BUILD.joinpath("index.html").is_file():
        if IN_CI:
            pytest.fail("the console is not built: make install builds it")
        pytest.skip("the console is not built (make console)")
    prefix = "assay/console/static/"
    shipped = {name.removeprefix(prefix) for name in wheel.namelist() if name.startswith(prefix)}
    built = {
        p.relative_to(CONSOLE_BUILD).as_posix() for p in CONSOLE_BUILD.rglob("*") if p.is_file()
    }
    assert shipped == built
    assert {"index.html", "sw.js", "manifest.webmanifest"} <= shipped
    hashed = [name for name in shipped if re.fullmatch(r"assets/[\w-]+-[\w-]{8}\.(js|css)", name)]
    assert any(name.endswith(".js") for name in hashed), shipped
    assert any(name.endswith(".css") for name in hashed), shipped
    assert wheel.read(prefix + "index.html") == (CONSOLE_BUILD / "index.html").read_bytes()


def test_the_wheel_ships_the_license_types_and_migrations(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "assay/py.typed" in names
    migrations = REPO / "src" / "assay" / "migrations"
    assert {f"assay/migrations/{p}" for p in _source_files(migrations)} <= names
    assert any(n.startswith("assay/migrations/versions/") for n in names)
    [license_file] = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(license_file) == (REPO / "LICENSE").read_bytes()
    assert b"Apache License" in wheel.read(license_file)
    metadata = _metadata(wheel)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "assay = assay.cli:app" in wheel.read(entry_points).decode()


def test_the_swagger_ui_assets_come_with_a_declared_dependency(wheel: zipfile.ZipFile) -> None:
    # /docs serves Swagger UI's files from the fastapi-offline package (assay.http.docs),
    # so the wheel must require it, and it must hold every file the route serves.
    from importlib.resources import files

    required = {Requirement(r).name for r in _metadata(wheel).get_all("Requires-Dist") or []}
    assert "fastapi-offline" in required
    static = files("fastapi_offline").joinpath("static")
    assert all(static.joinpath(name).is_file() for name in ASSET_TYPES)


def test_the_base_install_requires_no_optional_integration_or_runtime(
    wheel: zipfile.ZipFile,
) -> None:
    base = {
        canonicalize_name(Requirement(r).name)
        for r in _metadata(wheel).get_all("Requires-Dist") or []
        if "extra ==" not in r
    }
    optional = {"sentry-sdk", "opentelemetry-sdk", "xgboost-cpu", "scikit-learn", "skops"}
    assert base & optional == set()
    assert {"lightgbm", "onnxruntime", "numpy"} <= base  # what the demo's pack needs


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_starting_assay_imports_no_optional_package(tmp_path: Path) -> None:
    # In a fresh interpreter: this one has imported everything already.
    script = f"""
import sys
from pathlib import Path
import assay.cli
from assay.app import create_app
from assay.settings import Settings
create_app(Settings(env="test", data_dir=Path({str(tmp_path)!r})))
optional = {OPTIONAL_MODULES!r}
print("\\n".join(sorted(m for m in sys.modules if m.startswith(optional))))
"""
    started = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == []


def _requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    declared = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        declared.extend(extra)
    return [Requirement(r) for r in declared if not r.startswith("assay[")]


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_every_range_holds_the_locked_version_and_stops_below_the_next_series() -> None:
    locked = _locked()
    unbounded = []
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{requirement} does not admit the locked {locked[name]}: run make lock"
        )
        if not any(spec.operator == "<" for spec in requirement.specifier):
            unbounded.append(name)
    assert sorted(unbounded) == sorted(UNBOUNDED)


def test_each_optional_runtime_and_integration_has_its_extra_and_dev_installs_all() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    base = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    for entry in RUNTIMES:
        if entry.extra is None:
            assert base & set(entry.distributions), entry.name
        else:
            named = {canonicalize_name(Requirement(r).name) for r in extras[entry.extra]}
            assert named & set(entry.distributions), entry.name
    assert {OTEL.extra, SENTRY.extra} <= set(extras)
    [everything] = [Requirement(r) for r in extras["all"]]
    assert everything.name == "assay"
    assert everything.extras == set(extras) - {"all", "dev"}
    assert "assay[all]" in extras["dev"]
