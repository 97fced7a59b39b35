"""docs/mock-target.md describes the mock as it is."""

from __future__ import annotations

from pathlib import Path

from assay.mock_target.app import create_app
from assay.mock_target.replies import REFUSALS
from assay.mock_target.state import RecordedRequest

DOC = (Path(__file__).resolve().parents[2] / "docs" / "mock-target.md").read_text(encoding="utf-8")


def test_every_route_is_documented() -> None:
    for route in create_app().routes:
        path: str = getattr(route, "path", "")
        _, _, after_mode = path.lstrip("/").partition("/")
        assert path in DOC or f"/{{vulnerable,refusing,flaky}}/{after_mode}" in DOC, path


def test_every_log_field_and_the_number_of_refusals_are_documented() -> None:
    for name in RecordedRequest.__dataclass_fields__:
        assert f"| `{name}` |" in DOC, name
    assert f"in one of {len(REFUSALS)} polite wordings" in DOC
