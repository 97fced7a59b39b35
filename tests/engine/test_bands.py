"""Verdict and risk bands: thresholds, boundaries and definition errors."""

from __future__ import annotations

from typing import Any

import pytest

from assay.engine.bands import compile_bands
from assay.engine.errors import InvalidModelDefinition

FLASH_BANDS: dict[str, Any] = {
    "verdict": [
        {"label": "PASS", "at_least": 0.7},
        {"label": "CONDITIONAL PASS", "at_least": 0.5},
        {"label": "FAIL"},
    ],
    "risk": [
        {"label": "high", "below": 0.3},
        {"label": "medium", "below": 0.7},
        {"label": "low"},
    ],
}


@pytest.mark.parametrize(
    ("score", "verdict", "risk"),
    [
        (0.95, "PASS", "low"),
        (0.7, "PASS", "low"),
        (0.6999, "CONDITIONAL PASS", "medium"),
        (0.5, "CONDITIONAL PASS", "medium"),
        (0.4999, "FAIL", "medium"),
        (0.3, "FAIL", "medium"),
        (0.2999, "FAIL", "high"),
        (0.0, "FAIL", "high"),
    ],
)
def test_flash_bands(score: float, verdict: str, risk: str) -> None:
    assert compile_bands(FLASH_BANDS).classify(score) == (verdict, risk)


def test_missing_band_sets_give_no_label() -> None:
    assert compile_bands(None).classify(0.9) == (None, None)
    assert compile_bands({"risk": FLASH_BANDS["risk"]}).classify(0.9) == (None, "low")


@pytest.mark.parametrize(
    ("bands", "path"),
    [
        (
            {
                "verdict": [
                    {"label": "A", "at_least": 0.5},
                    {"label": "B", "at_least": 0.7},
                    {"label": "C"},
                ]
            },
            "verdict",
        ),
        (
            {
                "risk": [
                    {"label": "A", "below": 0.5},
                    {"label": "B", "at_least": 0.7},
                    {"label": "C"},
                ]
            },
            "risk",
        ),
        (
            {"verdict": [{"label": "A", "at_least": 0.5}, {"label": "B", "at_least": 0.2}]},
            "verdict[1]",
        ),
        ({"verdict": [{"label": "A", "at_least": 0.5}, {"label": "A"}]}, "verdict[1].label"),
        (
            {"verdict": [{"label": "A", "at_least": 0.5, "below": 0.2}, {"label": "B"}]},
            "verdict[0]",
        ),
        ({"verdict": [{"label": "only"}]}, "verdict"),
        ({"verdicts": []}, "verdicts"),
    ],
)
def test_bad_bands_are_refused_with_their_path(bands: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidModelDefinition) as caught:
        compile_bands(bands)
    assert caught.value.errors is not None
    assert caught.value.errors[0]["path"] == path
