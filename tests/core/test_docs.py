"""The documentation index lists every decision record."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_index_lists_every_decision_record() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((decisions/\d{4}-[a-z0-9-]+\.md)\)", index))
    recorded = {f"decisions/{path.name}" for path in (DOCS / "decisions").glob("[0-9]*.md")}
    assert recorded, "no decision records found"
    assert sorted(recorded - linked) == [], "decisions missing from docs/index.md"
    assert sorted(linked - recorded) == [], "docs/index.md links decisions that do not exist"
