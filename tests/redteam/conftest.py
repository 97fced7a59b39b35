"""The shipped red-team pack's detectors, built once, and a helper to score one answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from assay.engine.pack import build_pack_scorers, load_pack
from assay.engine.results import PredictionResult
from assay.engine.scorer import Scorer
from assay.redteam.detection import detector_record
from assay.redteam.probes import find_redteam_pack

CANARY = "ASSAY-CN-91XZ4B"
MARKER = "ASSAY-MK-7F3KQ2"

Score = Callable[..., PredictionResult]


def fullwidth(text: str) -> str:
    """`text` in full-width forms (U+FF01..U+FF5E), which NFKC maps back to ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.fixture(scope="session")
def detectors() -> Mapping[str, Scorer]:
    return build_pack_scorers(load_pack(find_redteam_pack()))


@pytest.fixture(scope="session")
def score(detectors: Mapping[str, Scorer]) -> Score:
    """score(detector, answer, prompt=..., canary=..., marker=...) -> the prediction."""

    def run(
        detector: str,
        answer: str,
        *,
        prompt: str = "",
        canary: str = CANARY,
        marker: str = MARKER,
        transforms: Sequence[str] = (),
    ) -> PredictionResult:
        record = detector_record(
            prompt=prompt,
            answer=answer,
            canary=canary,
            marker=marker,
            probe_goal="test",
            transforms=transforms,
        )
        result = detectors[detector].score_one(record)
        assert isinstance(result, PredictionResult), result
        return result

    return run
