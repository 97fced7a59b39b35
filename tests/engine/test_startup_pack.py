"""The example startup-success pack: it trains, loads, scores and keeps its promises."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml

from assay.engine.errors import InvalidModelDefinition
from assay.engine.explanations import EnsembleExplanation, FeatureExplanation, RulesExplanation
from assay.engine.ml_model import MLModel
from assay.engine.pack import Pack, load_pack
from assay.engine.results import PredictionResult, ValidatedRecord
from assay.engine.runtimes import OutputSpec, load_runtime
from assay.engine.scorer import Scorer
from tests.support.engine import PACK_DIR


def _result(scorer: Scorer, record: dict[str, Any]) -> PredictionResult:
    result = scorer.score_one(record)
    assert isinstance(result, PredictionResult), result
    return result


def test_pack_lists_models_in_registration_order(trained_pack: Pack) -> None:
    names = [m.name for m in trained_pack.models]
    assert names[-1] == "startup-success"
    assert set(names) == {
        "startup-success-lgbm",
        "startup-success-logreg",
        "capital-pillar",
        "advantage-pillar",
        "market-pillar",
        "people-pillar",
        "startup-success",
    }
    assert all(m.aliases == ("production",) for m in trained_pack.models)
    assert trained_pack.model("startup-success").components[0] == "startup-success-lgbm"


def test_series_a_profile_passes(pack_scorers: dict[str, Scorer], series_a: dict[str, Any]) -> None:
    result = _result(pack_scorers["startup-success"], series_a)
    assert (result.label, result.risk) == ("PASS", "low")
    assert result.derived == {
        "runway_months": pytest.approx(20.0),
        "burn_multiple": pytest.approx(12 * 400_000 / 2_600_000),
    }
    explanation = result.explanation
    assert isinstance(explanation, EnsembleExplanation)
    weights = {c.name: c.weight for c in explanation.components}
    assert weights["startup-success-lgbm"] == pytest.approx(0.35)
    assert sum(c.contribution for c in explanation.components) == pytest.approx(result.score)
    parts = {c.name: c.explanation for c in explanation.components}
    assert isinstance(parts["capital-pillar"], RulesExplanation)
    lgbm = parts["startup-success-lgbm"]
    assert isinstance(lgbm, FeatureExplanation)
    assert lgbm.contributions is not None
    assert lgbm.space == "log_odds"
    onnx = parts["startup-success-logreg"]
    assert isinstance(onnx, FeatureExplanation)
    assert onnx.contributions is None
    assert onnx.note


def test_pre_seed_profile_without_revenue_fails_with_high_risk(
    pack_scorers: dict[str, Scorer], pre_seed: dict[str, Any], series_a: dict[str, Any]
) -> None:
    result = _result(pack_scorers["startup-success"], pre_seed)
    assert (result.label, result.risk) == ("FAIL", "high")
    # No new ARR: the burn multiple takes its cap instead of dividing by zero.
    assert result.derived == {"runway_months": pytest.approx(7.2), "burn_multiple": 20.0}
    assert result.score < _result(pack_scorers["startup-success"], series_a).score
    for name, scorer in pack_scorers.items():
        assert 0.0 <= _result(scorer, pre_seed).score <= 1.0, name


def test_a_company_about_to_run_out_of_money_cannot_pass(
    pack_scorers: dict[str, Scorer], series_a: dict[str, Any]
) -> None:
    broke = {
        **series_a,
        "cash_on_hand_usd": 400_000,
        "gross_margin_percent": 20,
        "ltv_cac_ratio": 0.5,
        "investor_tier_primary": "none",
        "net_new_arr_usd": 100_000,
    }
    result = _result(pack_scorers["startup-success"], broke)
    explanation = result.explanation
    assert isinstance(explanation, EnsembleExplanation)
    capital = next(c for c in explanation.components if c.name == "capital-pillar")
    assert capital.score < 0.15  # the capital_critical ceiling's condition
    assert result.score <= 0.49
    assert result.label == "FAIL"
    if explanation.uncapped_score > 0.49:
        assert explanation.ceiling == "capital_critical"
    assert sum(c.contribution for c in explanation.components) == pytest.approx(result.score)


def test_more_prior_exits_never_lower_the_lightgbm_probability(
    pack_scorers: dict[str, Scorer], example_modules: dict[str, ModuleType]
) -> None:
    scorer = pack_scorers["startup-success-lgbm"]
    engine = scorer.engine
    assert isinstance(engine, MLModel)
    companies, _ = example_modules["synthetic"].generate_companies(150, seed=99)
    rows = []
    for company in companies:
        for exits in range(7):
            record = {
                **company,
                "prior_startup_experience_count": 10,
                "prior_successful_exits_count": exits,
            }
            row = scorer.schema.validate(record)
            assert isinstance(row, ValidatedRecord)
            rows.append(row.values)
    scores = engine.runtime.predict(engine.vectorizer.transform(rows)).scores.reshape(-1, 7)
    assert np.all(np.diff(scores, axis=1) >= 0)
    assert np.any(np.diff(scores, axis=1) > 0)  # the feature matters, it is not just flat


def test_training_the_pack_at_its_default_size_writes_both_artifacts(
    tmp_path: Path, example_modules: dict[str, ModuleType]
) -> None:
    directory = tmp_path / "pack"
    shutil.copytree(PACK_DIR, directory, ignore=shutil.ignore_patterns("build", "__pycache__"))
    written = example_modules["train"].train_pack(directory)  # the script's default size
    assert {p.name for p in written.values()} == {
        "startup_success_lgbm.txt",
        "startup_success_logreg.onnx",
    }


def test_the_onnx_model_is_valid_onnx_that_scores_as_scikit_learn_would(
    trained_pack: Pack, example_modules: dict[str, ModuleType]
) -> None:
    # The pack trains on the base install: NumPy fits the model, and onnx_logistic.py
    # writes the graph without onnx or skl2onnx. Both are checked against those tools.
    import onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    writer = example_modules["onnx_logistic"]
    rng = np.random.default_rng(3)
    # Columns of very different scales, and a constant one.
    x = rng.normal(size=(2000, 5)) * [1.0, 10.0, 100.0, 0.1, 0.0] + [0.0, 5.0, -50.0, 1.0, 2.0]
    y = (x[:, 0] + 0.1 * x[:, 1] - 0.01 * x[:, 2] + rng.normal(size=2000) > 0).astype(float)
    fitted = writer.fit_scaled_logistic(x, y, c=0.5)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, tol=1e-10)).fit(x, y)
    np.testing.assert_allclose(fitted.predict_proba(x), reference.predict_proba(x)[:, 1], atol=1e-3)

    data = writer.to_onnx(fitted)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    runtime = load_runtime("onnx", data, output=OutputSpec(class_label=1))
    np.testing.assert_allclose(runtime.predict(x).scores, fitted.predict_proba(x), atol=1e-5)

    artifact = trained_pack.model("startup-success-logreg").artifact_path
    assert artifact is not None
    onnx.checker.check_model(onnx.load_from_string(artifact.read_bytes()), full_check=True)


def _broken_pack(tmp_path: Path, change: Any) -> Path:
    directory = tmp_path / "pack"
    shutil.copytree(PACK_DIR, directory, ignore=shutil.ignore_patterns("build", "__pycache__"))
    manifest = yaml.safe_load((directory / "manifest.yaml").read_text())
    change(manifest, directory)
    (directory / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    return directory


def _pack_problems(directory: Path) -> list[dict[str, Any]]:
    with pytest.raises(InvalidModelDefinition) as caught:
        load_pack(directory)
    assert caught.value.errors is not None
    return [dict(e) for e in caught.value.errors]


def test_manifest_paths_cannot_leave_the_pack(tmp_path: Path) -> None:
    def escape(manifest: dict[str, Any], directory: Path) -> None:
        manifest["models"][0]["artifact"] = "../../../etc/passwd"
        manifest["models"][2]["rules"] = "/etc/hostname"

    problems = _pack_problems(_broken_pack(tmp_path, escape))
    assert [p["path"] for p in problems] == ["models[0].artifact", "models[2].rules"]


def test_manifest_symlinks_cannot_leave_the_pack(tmp_path: Path) -> None:
    def link(manifest: dict[str, Any], directory: Path) -> None:
        (directory / "rules" / "outside.yaml").symlink_to(tmp_path.parent)
        manifest["models"][2]["rules"] = "rules/outside.yaml"

    problems = _pack_problems(_broken_pack(tmp_path, link))
    assert "outside the pack" in problems[0]["message"]


def test_manifest_reports_errors_inside_rules_files(tmp_path: Path) -> None:
    def damage(manifest: dict[str, Any], directory: Path) -> None:
        people = directory / "rules" / "people.yaml"
        people.write_text(people.read_text().replace("has_technical_cofounder", "has_cto"))

    problems = _pack_problems(_broken_pack(tmp_path, damage))
    assert [(p["path"], p.get("name")) for p in problems] == [
        ("rules/people.yaml: rules[1].when.field", "technical_cofounder")
    ]


def test_manifest_reports_missing_components(tmp_path: Path) -> None:
    def damage(manifest: dict[str, Any], directory: Path) -> None:
        manifest["models"][-1]["components"].append({"model": "ghost", "weight": 1})

    problems = _pack_problems(_broken_pack(tmp_path, damage))
    assert [(p["message"], p.get("name")) for p in problems] == [
        ("component 'ghost' is not in the pack", "startup-success")
    ]


def test_manifest_shape_errors_point_at_the_model(tmp_path: Path) -> None:
    def damage(manifest: dict[str, Any], directory: Path) -> None:
        manifest["models"][1]["format"] = "tensorflow"

    problems = _pack_problems(_broken_pack(tmp_path, damage))
    assert problems[0]["path"] == "models[1].format"
    assert problems[0]["name"] == "startup-success-logreg"
