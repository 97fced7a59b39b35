"""The `assay-client` distribution as users install it: built offline with hatchling, it
holds the typed package and depends on httpx alone (standardwebhooks only as an extra)."""

from __future__ import annotations

import ast
import email
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"
SOURCES = sorted((CLIENT / "src" / "assay_client").glob("*.py"))
# What the client's modules may import besides the standard library and themselves.
ALLOWED_THIRD_PARTY = {"httpx"}
OPTIONAL_THIRD_PARTY = {"webhooks.py": {"standardwebhooks"}}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    dist = tmp_path_factory.mktemp("client-dist")
    # --no-isolation: hatchling comes from the dev install, not from the network.
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, CLIENT],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [path] = dist.glob("assay_client-*.whl")
    return zipfile.ZipFile(path)


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_the_wheel_depends_on_httpx_alone_and_standardwebhooks_as_an_extra(
    wheel: zipfile.ZipFile,
) -> None:
    metadata = _metadata(wheel)
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]
    base = [r for r in requirements if r.marker is None]
    extra = [r for r in requirements if r.marker is not None]

    assert [(r.name, str(r.specifier)) for r in base] == [("httpx", "<1,>=0.27")]
    assert [r.name for r in extra] == ["standardwebhooks"]
    assert all(r.marker is not None and r.marker.evaluate({"extra": "webhooks"}) for r in extra)
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata.get_all("Provides-Extra") == ["webhooks"]


def test_the_wheel_holds_the_typed_package_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    names = [n for n in wheel.namelist() if ".dist-info/" not in n]
    assert "assay_client/py.typed" in names
    assert {n.split("/")[0] for n in names} == {"assay_client"}
    assert {f"assay_client/{p.name}" for p in SOURCES} <= set(names)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_the_client_imports_only_httpx_and_reads_as_python_3_10(source: Path) -> None:
    tree = ast.parse(source.read_text(encoding="utf-8"), feature_version=(3, 10))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"assay_client"}
    assert third_party <= ALLOWED_THIRD_PARTY | OPTIONAL_THIRD_PARTY.get(source.name, set())
