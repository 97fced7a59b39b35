"""docs/compliance.md names the tests that prove each control; they must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPLIANCE = ROOT / "docs" / "compliance.md"
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _rows() -> list[str]:
    return [line for line in COMPLIANCE.read_text().splitlines() if line.startswith("| ")][2:]


def _defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_row_names_at_least_one_test_and_both_standards() -> None:
    rows = _rows()
    assert len(rows) >= 20
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 4, row
        _, asvs, nist, proof = cells
        assert re.match(r"V\d+ ", asvs), f"no ASVS chapter in: {row}"
        assert re.match(r"[A-Z]{2}-\d+", nist), f"no NIST 800-53 control in: {row}"
        assert NAMED_TEST.search(proof), f"no test named in: {row}"


def test_every_named_test_exists() -> None:
    missing: list[str] = []
    cache: dict[Path, set[str]] = {}
    for path_text, name in NAMED_TEST.findall(COMPLIANCE.read_text()):
        path = ROOT / path_text
        if not path.is_file():
            missing.append(f"{path_text} (no such file)")
            continue
        defined = cache.setdefault(path, _defined_tests(path))
        if name not in defined:
            missing.append(f"{path_text}::{name}")
    assert missing == [], f"docs/compliance.md names tests that do not exist: {missing}"
