"""The Scorer: batches, order, determinism, threads and the cost of the Python around a model."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from assay.engine.results import PredictionResult, RowError, ValidatedRecord
from assay.engine.scorer import Scorer


def test_batch_keeps_order_and_reports_each_bad_record(
    pack_scorers: dict[str, Scorer], series_a: dict[str, Any], pre_seed: dict[str, Any]
) -> None:
    scorer = pack_scorers["startup-success"]
    broken = {**series_a, "gross_margin_percent": 150, "sector": "mining"}
    results = scorer.score_batch([series_a, broken, pre_seed, "not a record"])
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert isinstance(results[0], PredictionResult)
    assert isinstance(results[2], PredictionResult)
    assert isinstance(results[1], RowError)
    assert results[1].fields == ("gross_margin_percent", "sector")
    assert isinstance(results[3], RowError)


def test_same_input_twice_gives_the_same_output(
    pack_scorers: dict[str, Scorer], series_a: dict[str, Any]
) -> None:
    for scorer in pack_scorers.values():
        first = scorer.score_one(series_a)
        second = scorer.score_one(dict(series_a))
        assert isinstance(first, PredictionResult)
        assert first.as_dict() == second.as_dict()


def test_results_serialise_to_strict_json(
    pack_scorers: dict[str, Scorer], series_a: dict[str, Any], pre_seed: dict[str, Any]
) -> None:
    for result in pack_scorers["startup-success"].score_batch([series_a, pre_seed, {}]):
        json.dumps(result.as_dict(), allow_nan=False)


def test_validation_and_scoring_can_run_as_separate_steps(
    pack_scorers: dict[str, Scorer], series_a: dict[str, Any], pre_seed: dict[str, Any]
) -> None:
    scorer = pack_scorers["startup-success"]
    checked = scorer.validate([series_a, pre_seed])
    rows = [row for row in checked if isinstance(row, ValidatedRecord)]
    assert len(rows) == 2
    # The canonical input is what a cache would key on; scoring it later gives the same.
    assert rows[0].canonical_json() != rows[1].canonical_json()
    later = scorer.score_validated(list(reversed(rows)))
    direct = scorer.score_batch([series_a, pre_seed])
    assert [r.index for r in later] == [1, 0]
    assert later[1].as_dict() == direct[0].as_dict()


def test_explanations_can_be_skipped(
    pack_scorers: dict[str, Scorer], series_a: dict[str, Any]
) -> None:
    scorer = pack_scorers["startup-success"]
    quiet = scorer.score_one(series_a, explain=False)
    full = scorer.score_one(series_a)
    assert isinstance(quiet, PredictionResult)
    assert isinstance(full, PredictionResult)
    assert quiet.explanation is None
    assert quiet.score == pytest.approx(full.score, abs=1e-12)
    assert (quiet.label, quiet.risk) == (full.label, full.risk)


def test_scorers_are_safe_to_share_between_threads(
    pack_scorers: dict[str, Scorer], series_a: dict[str, Any], pre_seed: dict[str, Any]
) -> None:
    scorer = pack_scorers["startup-success"]
    profiles = [series_a, pre_seed]
    expected = [scorer.score_one(p).as_dict() for p in profiles]

    def run(i: int) -> dict[str, Any]:
        return scorer.score_one(profiles[i % 2]).as_dict()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(64)))
    assert all(result == expected[i % 2] for i, result in enumerate(results))
