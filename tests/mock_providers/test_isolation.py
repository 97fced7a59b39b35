"""The mock stays out of Assay: it imports nothing of Assay, and only the CLI imports it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "assay"
MOCK = PACKAGE / "mock_providers"


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_the_mock_imports_nothing_of_assay() -> None:
    outside = {
        f"{path.name}: {module}"
        for path in MOCK.rglob("*.py")
        for module in _imported_modules(path)
        if module.startswith("assay") and not module.startswith("assay.mock_providers")
    }
    assert not outside


def test_only_the_command_line_imports_the_mock() -> None:
    importers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if MOCK not in path.parents
        and any(m.startswith("assay.mock_providers") for m in _imported_modules(path))
    }
    assert importers == {"cli.py"}
