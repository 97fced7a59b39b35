"""Building a `Scorer` from a spec, a compiled schema and (for ML) the artifact bytes.

This is the registry's one entry point for loading a model version:

    schema = compile_schema(schema_document)
    spec = parse_model_spec(spec_document)
    data = store.get(digest)                      # verifies the SHA-256 every read
    scorer = build_scorer(spec, schema, artifact=data, signature=sig, policy=policy)

Everything that can be checked is checked here, once: the features against the schema,
the feature count and names against the model, and one dry run of the model on
representative values, so that a version that loads also scores.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from assay.engine.bands import compile_bands
from assay.engine.base import ScoringEngine
from assay.engine.definition_errors import DefinitionProblems, definition_error
from assay.engine.ensemble import compile_ensemble
from assay.engine.errors import InvalidArtifact
from assay.engine.ml_model import MLModel
from assay.engine.rules.model import compile_rules
from assay.engine.runtimes import LoadPolicy, ModelRuntime, load_runtime
from assay.engine.schema.input_schema import InputSchema
from assay.engine.scorer import Scorer
from assay.engine.spec import EnsembleModelSpec, MLModelSpec, RulesModelSpec
from assay.engine.vectorize import FeatureVectorizer, build_vectorizer

_DEFAULT_POLICY = LoadPolicy()
AnySpec = MLModelSpec | RulesModelSpec | EnsembleModelSpec


def build_scorer(
    spec: AnySpec,
    schema: InputSchema,
    *,
    artifact: bytes | None = None,
    signature: bytes | str | None = None,
    components: Mapping[str, Scorer | ScoringEngine] | None = None,
    policy: LoadPolicy = _DEFAULT_POLICY,
    name: str | None = None,
) -> Scorer:
    """Compile and load one model version.

    `artifact` (and optionally `signature`) for `ml`; `components` maps the names an
    ensemble lists to loaded scorers or engines. Raises `InvalidModelDefinition`,
    `InvalidArtifact` or `UntrustedArtifact`.
    """
    engine = build_engine(
        spec,
        schema,
        artifact=artifact,
        signature=signature,
        components=components,
        policy=policy,
    )
    return Scorer(schema=schema, engine=engine, bands=compile_bands(spec.bands), name=name)


def build_engine(
    spec: AnySpec,
    schema: InputSchema,
    *,
    artifact: bytes | None = None,
    signature: bytes | str | None = None,
    components: Mapping[str, Scorer | ScoringEngine] | None = None,
    policy: LoadPolicy = _DEFAULT_POLICY,
) -> ScoringEngine:
    """The engine for `spec` (see `build_scorer`)."""
    if isinstance(spec, RulesModelSpec):
        return compile_rules(spec.rules, schema)
    if isinstance(spec, EnsembleModelSpec):
        engines = {
            key: value.engine if isinstance(value, Scorer) else value
            for key, value in (components or {}).items()
        }
        return compile_ensemble(spec.definition(), engines, schema)
    if artifact is None:
        raise InvalidArtifact("An ml model needs its artifact bytes.")
    return build_ml_model(spec, schema, artifact, signature=signature, policy=policy)


def build_ml_model(
    spec: MLModelSpec,
    schema: InputSchema,
    artifact: bytes,
    *,
    signature: bytes | str | None = None,
    policy: LoadPolicy = _DEFAULT_POLICY,
) -> MLModel:
    problems = DefinitionProblems("model specification")
    vectorizer = build_vectorizer(spec.features, schema, problems)
    if vectorizer is None:
        raise problems.error()
    runtime = load_runtime(
        spec.format, artifact, output=spec.output, policy=policy, signature=signature
    )
    _check_feature_match(runtime, vectorizer)
    model = MLModel(runtime, vectorizer)
    _dry_run(runtime, vectorizer, schema)
    return model


def _check_feature_match(runtime: ModelRuntime, vectorizer: FeatureVectorizer) -> None:
    info = runtime.info
    if info.n_features is not None and info.n_features != vectorizer.width:
        raise definition_error(
            "model specification",
            "features",
            f"the model expects {info.n_features} features but the features list gives "
            f"{vectorizer.width}",
        )
    if info.feature_names is not None and info.feature_names != vectorizer.names:
        mismatch = next(
            (
                i
                for i, (a, b) in enumerate(zip(info.feature_names, vectorizer.names, strict=False))
                if a != b
            ),
            min(len(info.feature_names), vectorizer.width),
        )
        trained = info.feature_names[mismatch] if mismatch < len(info.feature_names) else "-"
        raise definition_error(
            "model specification",
            f"features[{mismatch}]",
            f"the model was trained with feature {trained!r} in this position; the "
            "features list must name the model's columns in the model's order",
            vectorizer.names[mismatch] if mismatch < vectorizer.width else None,
        )


def _dry_run(runtime: ModelRuntime, vectorizer: FeatureVectorizer, schema: InputSchema) -> None:
    probe = vectorizer.transform([schema.probe_values])
    try:
        output = runtime.predict(probe, contributions=runtime.info.contributions_note is None)
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InvalidArtifact(f"The model failed a test prediction: {reason}") from None
    if output.scores.shape != (1,) or not np.isfinite(output.scores).all():
        raise InvalidArtifact("The model's test prediction did not give one finite score per row.")
