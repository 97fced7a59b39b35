"""Train the startup-success pack's two ML models into ``build/`` (never committed).

    python examples/startup_success/train.py [--rows 4000] [--seed 7] [--pack-dir DIR]

Synthetic companies (see synthetic_startups.py) go through the pack's own input schema
and each model's own feature vectoriser, exactly as they will when served, then:

- a LightGBM classifier on every default feature, with a monotone constraint that more
  prior successful exits never lower the predicted probability -> build/*.txt;
- a scaled logistic regression on the ONNX model's feature list, written as the ONNX
  graph skl2onnx would write (ZipMap output) -> build/*.onnx; training fails if it
  learned a negative weight for prior successful exits (see onnx_logistic.py).

Only Assay's base install is needed (`assay demo` trains this pack wherever Assay is
installed); training takes a few seconds on two cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightgbm
import numpy as np

from assay.engine.definition_errors import DefinitionProblems
from assay.engine.pack import Pack, PackModel, load_pack
from assay.engine.results import ValidatedRecord
from assay.engine.spec import MLModelSpec
from assay.engine.vectorize import FeatureVectorizer, build_vectorizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_logistic import fit_scaled_logistic, to_onnx
from synthetic_startups import generate_companies

PACK_DIR = Path(__file__).resolve().parent
LGBM_MODEL = "startup-success-lgbm"
ONNX_MODEL = "startup-success-logreg"
MONOTONE_FEATURE = "prior_successful_exits_count"


def _vectorizer(model: PackModel) -> FeatureVectorizer:
    spec = model.spec
    if not isinstance(spec, MLModelSpec):
        raise TypeError(f"{model.name} is not an ml model")
    problems = DefinitionProblems("model specification")
    vectorizer = build_vectorizer(spec.features, model.schema, problems)
    problems.raise_if_any()
    if vectorizer is None:
        raise RuntimeError(f"{model.name}: no features")
    return vectorizer


def _validated(model: PackModel, companies: list[dict[str, object]]) -> list[ValidatedRecord]:
    rows = [model.schema.validate(company, i) for i, company in enumerate(companies)]
    invalid = [row for row in rows if not isinstance(row, ValidatedRecord)]
    if invalid:
        raise ValueError(f"synthetic data fails the schema: {invalid[0]}")
    return [row for row in rows if isinstance(row, ValidatedRecord)]


def train_lightgbm(model: PackModel, rows: list[ValidatedRecord], y: np.ndarray, seed: int) -> str:
    vectorizer = _vectorizer(model)
    x = vectorizer.transform([row.values for row in rows])
    constraints = [1 if name == MONOTONE_FEATURE else 0 for name in vectorizer.names]
    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 40,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "monotone_constraints": constraints,
        "monotone_constraints_method": "advanced",
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbose": -1,
    }
    data = lightgbm.Dataset(x, label=y, feature_name=list(vectorizer.names), free_raw_data=True)
    booster = lightgbm.train(params, data, num_boost_round=200)
    return str(booster.model_to_string())


def train_logistic_onnx(model: PackModel, rows: list[ValidatedRecord], y: np.ndarray) -> bytes:
    vectorizer = _vectorizer(model)
    x = vectorizer.transform([row.values for row in rows])
    fitted = fit_scaled_logistic(x, y.astype(np.float64), c=0.5)
    # Scaling keeps each feature's sign, so a non-negative weight on prior exits means
    # more exits never lower this model's probability either (as the LightGBM model's
    # monotone constraint guarantees for it); a training run that breaks this fails.
    weight = float(fitted.weights[vectorizer.names.index(MONOTONE_FEATURE)])
    if weight < 0:
        raise RuntimeError(f"the logistic regression learned a negative {MONOTONE_FEATURE} weight")
    return to_onnx(fitted)


def train_pack(pack_dir: Path = PACK_DIR, *, rows: int = 4000, seed: int = 7) -> dict[str, Path]:
    """Train both models and write their artifacts where the manifest expects them."""
    pack: Pack = load_pack(pack_dir)
    companies, outcomes = generate_companies(rows, seed)
    lgbm, logreg = pack.model(LGBM_MODEL), pack.model(ONNX_MODEL)
    validated = _validated(lgbm, companies)
    written: dict[str, Path] = {}
    for model, payload in (
        (lgbm, train_lightgbm(lgbm, validated, outcomes, seed).encode()),
        (logreg, train_logistic_onnx(logreg, validated, outcomes)),
    ):
        if model.artifact_path is None:
            raise RuntimeError(f"{model.name} has no artifact path")
        model.artifact_path.parent.mkdir(parents=True, exist_ok=True)
        model.artifact_path.write_bytes(payload)
        written[model.name] = model.artifact_path
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pack-dir", type=Path, default=PACK_DIR)
    args = parser.parse_args()
    for name, path in train_pack(args.pack_dir, rows=args.rows, seed=args.seed).items():
        sys.stdout.write(f"{name}: {path}\n")


if __name__ == "__main__":
    main()
