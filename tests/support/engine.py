"""Scoring fixtures: tiny models of every format trained once per session, and the example pack."""

from __future__ import annotations

import importlib.util
import io
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import joblib
import lightgbm
import numpy as np
import pytest
import skops.io as sio
import xgboost
import yaml
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression

from assay.engine.pack import Pack, build_pack_scorers, load_pack
from assay.engine.schema.input_schema import InputSchema, compile_schema
from assay.engine.scorer import Scorer

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "examples" / "startup_success"
TINY_FEATURES = ("a", "b", "c", "d")


def tiny_schema_document() -> dict[str, Any]:
    return {
        "fields": [
            {"name": name, "type": "number", "minimum": -100, "maximum": 100}
            for name in TINY_FEATURES
        ]
    }


@pytest.fixture(scope="session")
def tiny_schema() -> InputSchema:
    return compile_schema(tiny_schema_document())


@pytest.fixture(scope="session")
def tiny_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, len(TINY_FEATURES)))
    y = (x[:, 0] + 0.5 * x[:, 1] - 0.3 * x[:, 2] + rng.normal(scale=0.3, size=400) > 0).astype(int)
    return x, y


@pytest.fixture(scope="session")
def tiny_logreg(tiny_data: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    x, y = tiny_data
    return LogisticRegression().fit(x, y)


@pytest.fixture(scope="session")
def artifacts(
    tiny_data: tuple[np.ndarray, np.ndarray], tiny_logreg: LogisticRegression
) -> dict[str, bytes]:
    """One tiny model per format, as the bytes an uploader would send."""
    x, y = tiny_data
    names = list(TINY_FEATURES)
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 1},
        lightgbm.Dataset(x, label=y, feature_name=names),
        num_boost_round=15,
    )
    xgb = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 1},
        xgboost.DMatrix(x, label=y, feature_names=names),
        num_boost_round=10,
    )
    initial = [("input", FloatTensorType([None, len(names)]))]
    zipmap = to_onnx(tiny_logreg, initial_types=initial, target_opset={"": 17, "ai.onnx.ml": 3})
    tensor = to_onnx(
        tiny_logreg,
        initial_types=initial,
        options={id(tiny_logreg): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    pickled = io.BytesIO()
    joblib.dump(tiny_logreg, pickled)
    return {
        "lightgbm": str(booster.model_to_string()).encode(),
        "xgboost-json": bytes(xgb.save_raw("json")),
        "xgboost-ubj": bytes(xgb.save_raw("ubj")),
        "onnx": zipmap.SerializeToString(),
        "onnx-tensor": tensor.SerializeToString(),
        "skops": sio.dumps(tiny_logreg),
        "pickle": pickled.getvalue(),
    }


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"startup_success_{name}", PACK_DIR / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def example_modules() -> Iterator[dict[str, ModuleType]]:
    saved = list(sys.path)
    try:
        yield {
            "train": _load_example("train"),
            "synthetic": _load_example("synthetic_startups"),
            "onnx_logistic": _load_example("onnx_logistic"),
        }
    finally:
        sys.path[:] = saved


@pytest.fixture(scope="session")
def trained_pack(
    tmp_path_factory: pytest.TempPathFactory, example_modules: dict[str, ModuleType]
) -> Pack:
    """The example pack copied to a temporary directory and trained there (a few seconds)."""
    directory = tmp_path_factory.mktemp("pack") / "startup_success"
    shutil.copytree(PACK_DIR, directory, ignore=shutil.ignore_patterns("build", "__pycache__"))
    example_modules["train"].train_pack(directory, rows=2000, seed=7)
    return load_pack(directory)


@pytest.fixture(scope="session")
def pack_scorers(trained_pack: Pack) -> dict[str, Scorer]:
    return build_pack_scorers(trained_pack)


@pytest.fixture(scope="session")
def startup_schema() -> InputSchema:
    return compile_schema(yaml.safe_load((PACK_DIR / "schema.yaml").read_text()))


SERIES_A: dict[str, Any] = {
    "company_name": "Acme Analytics",
    "founder_email": "ceo@acme.example",
    "funding_stage": "series_a",
    "total_capital_raised_usd": 15_000_000,
    "cash_on_hand_usd": 8_000_000,
    "monthly_burn_usd": 400_000,
    "annual_revenue_run_rate_usd": 4_000_000,
    "revenue_growth_rate_percent": 180,
    "gross_margin_percent": 75,
    "net_new_arr_usd": 2_600_000,
    "ltv_cac_ratio": 3.5,
    "investor_tier_primary": "tier_1",
    "product_stage": "launched",
    "patent_count": 2,
    "proprietary_tech": True,
    "network_effects_present": True,
    "has_data_moat": True,
    "tech_differentiation_score": 4,
    "switching_cost_score": 4,
    "brand_strength_score": 3,
    "scalability_score": 4,
    "product_retention_30d_percent": 70,
    "sector": "saas",
    "tam_size_usd": 20_000_000_000,
    "sam_size_usd": 5_000_000_000,
    "som_size_usd": 500_000_000,
    "market_growth_rate_percent": 25,
    "customer_count": 120,
    "customer_concentration_percent": 12,
    "competition_intensity": 3,
    "competitors_count": 8,
    "net_dollar_retention_percent": 125,
    "nps_score": 45,
    "founders_count": 3,
    "team_size_full_time": 45,
    "years_experience_avg": 12,
    "domain_expertise_years_avg": 8,
    "prior_startup_experience_count": 2,
    "prior_successful_exits_count": 1,
    "board_experience_score": 4,
    "advisors_count": 4,
    "team_diversity_percent": 35,
    "key_person_dependency": False,
    "has_technical_cofounder": True,
}

# Pre-seed, no revenue at all: gross margin, LTV/CAC and net new ARR fall to their
# defaults, and the burn multiple (no new ARR to divide by) to its cap.
PRE_SEED_NO_REVENUE: dict[str, Any] = {
    "company_name": "Tiny Idea",
    "funding_stage": "pre_seed",
    "total_capital_raised_usd": 250_000,
    "cash_on_hand_usd": 180_000,
    "monthly_burn_usd": 25_000,
    "annual_revenue_run_rate_usd": 0,
    "product_stage": "concept",
    "proprietary_tech": False,
    "network_effects_present": False,
    "has_data_moat": False,
    "tech_differentiation_score": 2,
    "switching_cost_score": 1,
    "brand_strength_score": 1,
    "scalability_score": 3,
    "sector": "consumer",
    "tam_size_usd": 500_000_000,
    "sam_size_usd": 100_000_000,
    "som_size_usd": 5_000_000,
    "market_growth_rate_percent": 8,
    "competition_intensity": 4,
    "founders_count": 1,
    "team_size_full_time": 1,
    "years_experience_avg": 4,
    "domain_expertise_years_avg": 1,
    "board_experience_score": 1,
    "team_diversity_percent": 0,
    "key_person_dependency": True,
    "has_technical_cofounder": False,
}


@pytest.fixture
def series_a() -> dict[str, Any]:
    return dict(SERIES_A)


@pytest.fixture
def pre_seed() -> dict[str, Any]:
    return dict(PRE_SEED_NO_REVENUE)


@pytest.fixture
def make_record() -> Callable[..., dict[str, Any]]:
    """The Series A profile with some fields changed (`drop` removes fields)."""

    def build(drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
        record = {k: v for k, v in SERIES_A.items() if k not in drop}
        record.update(changes)
        return record

    return build
