"""docs/architecture.md names every package under src/assay/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "assay"
DOC = ROOT / "docs" / "architecture.md"


def test_every_package_is_described_in_the_architecture_page() -> None:
    text = DOC.read_text()
    packages = sorted(
        str(init.parent.relative_to(PACKAGE))
        for init in PACKAGE.rglob("__init__.py")
        if init.parent != PACKAGE
    )
    assert len(packages) > 15
    missing = [name for name in packages if f"`{name}/`" not in text]
    assert not missing, f"packages missing from docs/architecture.md: {missing}"


def test_the_architecture_page_lists_the_contracts_make_lint_holds() -> None:
    text = DOC.read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    contracts = pyproject.count("[[tool.importlinter.contracts]]")
    words = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
    ]
    assert 6 <= contracts < len(words)
    assert f"with {words[contracts]} import contracts" in text
