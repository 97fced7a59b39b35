"""ML runtimes: each format loads from bytes and scores; pickle only when allowed and signed."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import joblib
import lightgbm
import numpy as np
import onnx
import pytest
import skops.io as sio
import xgboost
from onnx import TensorProto, helper, numpy_helper
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from assay.engine.build import build_scorer
from assay.engine.errors import InvalidArtifact, InvalidModelDefinition, UntrustedArtifact
from assay.engine.formats import ArtifactFormat
from assay.engine.integrity import TrustedPublisherKey, generate_publisher_key, sign_artifact
from assay.engine.results import PredictionResult
from assay.engine.runtimes import RUNTIMES, LoadPolicy, OutputSpec, load_runtime
from assay.engine.schema.input_schema import InputSchema, compile_schema
from assay.engine.spec import parse_model_spec

SAFE_FORMATS = [
    ("lightgbm", "lightgbm"),
    ("xgboost-json", "xgboost-json"),
    ("xgboost-ubj", "xgboost-ubj"),
    ("onnx", "onnx"),
    ("onnx-tensor", "onnx"),
    ("skops", "skops"),
]


def test_every_artifact_format_has_exactly_one_runtime() -> None:
    declared = [fmt for entry in RUNTIMES for fmt in entry.formats]
    assert sorted(declared) == sorted(ArtifactFormat)


@pytest.mark.parametrize(("artifact", "fmt"), SAFE_FORMATS)
def test_every_safe_format_loads_from_bytes_and_scores(
    artifacts: dict[str, bytes], tiny_data: tuple[np.ndarray, np.ndarray], artifact: str, fmt: str
) -> None:
    x, y = tiny_data
    runtime = load_runtime(fmt, artifacts[artifact])
    assert runtime.info.n_features in (4, None)
    output = runtime.predict(x[:50])
    assert output.scores.shape == (50,)
    assert np.all((output.scores >= 0) & (output.scores <= 1))
    # The tiny models learned the signal: scores separate the two classes.
    scores = runtime.predict(x).scores
    assert scores[y == 1].mean() > scores[y == 0].mean() + 0.3


@pytest.mark.parametrize("artifact", ["onnx", "onnx-tensor", "skops"])
def test_converted_logistic_regressions_match_scikit_learn(
    artifacts: dict[str, bytes],
    tiny_data: tuple[np.ndarray, np.ndarray],
    tiny_logreg: LogisticRegression,
    artifact: str,
) -> None:
    x, _ = tiny_data
    runtime = load_runtime("skops" if artifact == "skops" else "onnx", artifacts[artifact])
    expected = tiny_logreg.predict_proba(x)[:, 1]
    np.testing.assert_allclose(runtime.predict(x).scores, expected, atol=1e-5)


def test_onnx_zipmap_class_can_be_chosen_by_label(
    artifacts: dict[str, bytes], tiny_data: tuple[np.ndarray, np.ndarray]
) -> None:
    x, _ = tiny_data
    positive = load_runtime("onnx", artifacts["onnx"], output=OutputSpec(class_label=1))
    negative = load_runtime("onnx", artifacts["onnx"], output=OutputSpec(class_label="0"))
    np.testing.assert_allclose(
        positive.predict(x[:5]).scores + negative.predict(x[:5]).scores, 1.0, atol=1e-6
    )


def test_onnx_output_must_exist(artifacts: dict[str, bytes]) -> None:
    with pytest.raises(InvalidArtifact, match="no output 'score'"):
        load_runtime("onnx", artifacts["onnx"], output=OutputSpec(name="score"))


def test_onnx_has_no_contributions_and_says_why(
    artifacts: dict[str, bytes], tiny_data: tuple[np.ndarray, np.ndarray]
) -> None:
    runtime = load_runtime("onnx", artifacts["onnx-tensor"])
    assert runtime.predict(tiny_data[0][:3], contributions=True).contributions is None
    assert runtime.info.contributions_note is not None
    assert "ONNX" in runtime.info.contributions_note


def test_onnx_external_data_cannot_read_host_files() -> None:
    weights = numpy_helper.from_array(np.ones((4, 1), dtype=np.float32), name="W")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "/etc/hostname"), ("length", "16")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(InvalidArtifact, match="could not be loaded"):
        load_runtime("onnx", model.SerializeToString())


@pytest.mark.parametrize("artifact", ["lightgbm", "xgboost-json", "xgboost-ubj"])
def test_tree_contributions_add_up_to_the_margin(
    artifacts: dict[str, bytes], tiny_data: tuple[np.ndarray, np.ndarray], artifact: str
) -> None:
    x, _ = tiny_data
    runtime = load_runtime(artifact, artifacts[artifact])
    output = runtime.predict(x[:20], contributions=True)
    assert output.contributions is not None
    assert output.contributions.shape == (20, 5)
    assert output.space == "log_odds"
    margin = output.contributions.sum(axis=1)
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), output.scores, atol=1e-5)


def test_linear_contributions_add_up_to_the_decision_function(
    artifacts: dict[str, bytes],
    tiny_data: tuple[np.ndarray, np.ndarray],
    tiny_logreg: LogisticRegression,
) -> None:
    x, _ = tiny_data
    output = load_runtime("skops", artifacts["skops"]).predict(x[:10], contributions=True)
    assert output.contributions is not None
    np.testing.assert_allclose(
        output.contributions.sum(axis=1), tiny_logreg.decision_function(x[:10]), atol=1e-9
    )


def test_skops_types_outside_the_trusted_list_are_refused(
    tiny_data: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = tiny_data
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
    data = sio.dumps(forest)
    with pytest.raises(UntrustedArtifact, match=r"sklearn\.tree\._tree\.Tree"):
        load_runtime("skops", data)
    trusted = LoadPolicy(skops_trusted_types=("sklearn.tree._tree.Tree",))
    runtime = load_runtime("skops", data, policy=trusted)
    np.testing.assert_allclose(runtime.predict(x[:5]).scores, forest.predict_proba(x[:5])[:, 1])


@pytest.fixture(scope="module")
def publisher() -> tuple[object, TrustedPublisherKey]:
    private = generate_publisher_key()
    return private, TrustedPublisherKey.from_public_key(private.public_key(), "ci publisher")


def test_pickle_is_refused_by_default_even_when_signed(
    artifacts: dict[str, bytes], publisher: tuple[object, TrustedPublisherKey]
) -> None:
    private, key = publisher
    signature = sign_artifact(artifacts["pickle"], private)  # type: ignore[arg-type]
    with pytest.raises(UntrustedArtifact, match="refused unless"):
        load_runtime(
            "pickle",
            artifacts["pickle"],
            policy=LoadPolicy(trusted_keys=(key,)),
            signature=signature,
        )


def test_pickle_is_refused_when_allowed_but_unsigned(
    artifacts: dict[str, bytes], publisher: tuple[object, TrustedPublisherKey]
) -> None:
    _, key = publisher
    policy = LoadPolicy(allow_pickle=True, trusted_keys=(key,))
    with pytest.raises(UntrustedArtifact, match="no signature"):
        load_runtime("pickle", artifacts["pickle"], policy=policy)


def test_pickle_is_refused_when_signed_by_an_untrusted_key(
    artifacts: dict[str, bytes], publisher: tuple[object, TrustedPublisherKey]
) -> None:
    _, key = publisher
    stranger = generate_publisher_key()
    policy = LoadPolicy(allow_pickle=True, trusted_keys=(key,))
    with pytest.raises(UntrustedArtifact, match="does not verify"):
        load_runtime(
            "pickle",
            artifacts["pickle"],
            policy=policy,
            signature=sign_artifact(artifacts["pickle"], stranger),
        )


def test_pickle_is_refused_when_the_signed_bytes_were_changed(
    tiny_logreg: LogisticRegression, publisher: tuple[object, TrustedPublisherKey]
) -> None:
    private, key = publisher
    original = io.BytesIO()
    joblib.dump(tiny_logreg, original)
    signature = sign_artifact(original.getvalue(), private)  # type: ignore[arg-type]
    other = LogisticRegression(C=0.01).fit([[0.0] * 4, [1.0] * 4], [0, 1])
    swapped = io.BytesIO()
    joblib.dump(other, swapped)
    policy = LoadPolicy(allow_pickle=True, trusted_keys=(key,))
    with pytest.raises(UntrustedArtifact):
        load_runtime("pickle", swapped.getvalue(), policy=policy, signature=signature)


def test_pickle_loads_when_allowed_and_signed_by_a_trusted_key(
    artifacts: dict[str, bytes],
    tiny_data: tuple[np.ndarray, np.ndarray],
    tiny_logreg: LogisticRegression,
    publisher: tuple[object, TrustedPublisherKey],
) -> None:
    private, key = publisher
    signature = sign_artifact(artifacts["pickle"], private)  # type: ignore[arg-type]
    policy = LoadPolicy(allow_pickle=True, trusted_keys=(key,))
    runtime = load_runtime("pickle", artifacts["pickle"], policy=policy, signature=signature)
    x, _ = tiny_data
    np.testing.assert_allclose(
        runtime.predict(x[:5]).scores, tiny_logreg.predict_proba(x[:5])[:, 1]
    )


def test_signatures_can_be_required_for_every_format(
    artifacts: dict[str, bytes], publisher: tuple[object, TrustedPublisherKey]
) -> None:
    private, key = publisher
    policy = LoadPolicy(require_signatures=True, trusted_keys=(key,))
    with pytest.raises(UntrustedArtifact, match="requires every artifact to be signed"):
        load_runtime("lightgbm", artifacts["lightgbm"], policy=policy)
    signature = sign_artifact(artifacts["lightgbm"], private)  # type: ignore[arg-type]
    load_runtime("lightgbm", artifacts["lightgbm"], policy=policy, signature=signature)


def test_a_given_signature_is_always_checked(artifacts: dict[str, bytes]) -> None:
    stranger = generate_publisher_key()
    with pytest.raises(UntrustedArtifact):
        load_runtime(
            "onnx", artifacts["onnx"], signature=sign_artifact(artifacts["onnx"], stranger)
        )


def test_corrupt_bytes_of_the_right_shape_are_refused() -> None:
    with pytest.raises(InvalidArtifact, match="LightGBM model could not be loaded"):
        load_runtime("lightgbm", b"tree\nversion=v4\nnothing else")
    with pytest.raises(InvalidArtifact, match="XGBoost model could not be loaded"):
        load_runtime("xgboost-json", b'{"learner": 1}')


def test_feature_count_must_match_the_schema(artifacts: dict[str, bytes]) -> None:
    schema = compile_schema({"fields": [{"name": n, "type": "number"} for n in ("a", "b", "c")]})
    with pytest.raises(InvalidModelDefinition, match="expects 4 features"):
        build_scorer(
            parse_model_spec({"kind": "ml", "format": "onnx"}), schema, artifact=artifacts["onnx"]
        )


def test_trained_feature_names_must_match_the_feature_order(
    artifacts: dict[str, bytes], tiny_schema: InputSchema
) -> None:
    spec = parse_model_spec({"kind": "ml", "format": "lightgbm", "features": ["b", "a", "c", "d"]})
    with pytest.raises(InvalidModelDefinition) as caught:
        build_scorer(spec, tiny_schema, artifact=artifacts["lightgbm"])
    assert caught.value.errors is not None
    assert caught.value.errors[0]["path"] == "features[0]"


@pytest.mark.parametrize(("artifact", "fmt"), SAFE_FORMATS)
def test_runtimes_are_thread_safe(
    artifacts: dict[str, bytes], tiny_schema: InputSchema, artifact: str, fmt: str
) -> None:
    scorer = build_scorer(
        parse_model_spec({"kind": "ml", "format": fmt}), tiny_schema, artifact=artifacts[artifact]
    )
    rng = np.random.default_rng(3)
    records = [dict(zip("abcd", map(float, row), strict=True)) for row in rng.normal(size=(64, 4))]

    def one(i: int) -> float:
        result = scorer.score_one(records[i % 64])
        assert isinstance(result, PredictionResult)
        return result.score

    # Compared with single-row calls: a batched call may differ from them in the last
    # bits (vectorised float32 and BLAS kernels), whatever the threads.
    expected = [one(i) for i in range(64)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(one, range(512)))
    assert got == [expected[i % 64] for i in range(512)]


def test_onnx_model_proto_parses_with_the_onnx_package(artifacts: dict[str, bytes]) -> None:
    # The sniffed ONNX bytes are a real ModelProto (guards the sniffer's field list).
    assert onnx.load_model_from_string(artifacts["onnx"]).graph.node


@pytest.fixture(scope="module")
def three_classes(tiny_data: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x, _ = tiny_data
    return x, np.digitize(x[:, 0], [-0.5, 0.5])


def test_multiclass_lightgbm_needs_a_class_and_scores_it(
    three_classes: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = three_classes
    booster = lightgbm.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_threads": 1},
        lightgbm.Dataset(x, label=y),
        num_boost_round=5,
    )
    data = str(booster.model_to_string()).encode()
    with pytest.raises(InvalidArtifact, match="class_index"):
        load_runtime("lightgbm", data)
    runtime = load_runtime("lightgbm", data, output=OutputSpec(class_index=2))
    output = runtime.predict(x[:6], contributions=True)
    np.testing.assert_allclose(output.scores, booster.predict(x[:6])[:, 2])
    assert output.contributions is not None
    assert output.contributions.shape == (6, 5)
    assert output.space == "raw"


def test_multiclass_xgboost_scores_the_chosen_class(
    three_classes: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = three_classes
    booster = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "nthread": 1},
        xgboost.DMatrix(x, label=y),
        num_boost_round=5,
    )
    data = bytes(booster.save_raw("json"))
    with pytest.raises(InvalidArtifact, match="class_index"):
        load_runtime("xgboost-json", data)
    runtime = load_runtime("xgboost-json", data, output=OutputSpec(class_index=0))
    output = runtime.predict(x[:4], contributions=True)
    np.testing.assert_allclose(
        output.scores, booster.predict(xgboost.DMatrix(x[:4]))[:, 0], rtol=1e-6
    )
    assert output.contributions is not None
    assert output.contributions.shape == (4, 5)


def test_scikit_learn_output_choices(
    tiny_data: tuple[np.ndarray, np.ndarray], tiny_logreg: LogisticRegression
) -> None:
    x, _ = tiny_data
    data = sio.dumps(tiny_logreg)
    negative = load_runtime("skops", data, output=OutputSpec(class_label=0))
    np.testing.assert_allclose(
        negative.predict(x[:3]).scores, tiny_logreg.predict_proba(x[:3])[:, 0]
    )
    margin = load_runtime("skops", data, output=OutputSpec(method="decision_function"))
    np.testing.assert_allclose(margin.predict(x[:3]).scores, tiny_logreg.decision_function(x[:3]))
    with pytest.raises(InvalidArtifact, match="not one of the model's classes"):
        load_runtime("skops", data, output=OutputSpec(class_label="yes"))
    with pytest.raises(InvalidArtifact, match="class_index 5"):
        load_runtime("skops", data, output=OutputSpec(class_index=5))


def test_linear_regression_contributions_are_in_raw_space(
    tiny_data: tuple[np.ndarray, np.ndarray],
) -> None:
    x, _ = tiny_data
    target = x @ np.array([1.0, -2.0, 0.5, 0.0]) + 3.0
    regression = LinearRegression().fit(x, target)
    runtime = load_runtime("skops", sio.dumps(regression))
    output = runtime.predict(x[:3], contributions=True)
    assert output.space == "raw"
    assert output.contributions is not None
    np.testing.assert_allclose(output.contributions.sum(axis=1), output.scores)


def test_pipelines_have_no_contributions(tiny_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = tiny_data
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    runtime = load_runtime("skops", sio.dumps(pipeline))
    assert runtime.predict(x[:2], contributions=True).contributions is None
    assert runtime.info.contributions_note is not None
