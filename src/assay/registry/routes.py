"""Model management, the native predict API, prediction records and system info."""

from __future__ import annotations

import json
import platform
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile, status
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter

from assay import __version__
from assay.audit.service import RequestMeta
from assay.auth.deps import require
from assay.core.db import DbSession
from assay.core.errors import ValidationFailed
from assay.core.permissions import Permission
from assay.core.principal import OrgPrincipal
from assay.core.schemas import AwareIsoDatetime
from assay.core.tenancy import scoped
from assay.engine.results import PredictionResult
from assay.engine.runtimes import runtime_versions
from assay.http.body_limit import AcceptsUpload
from assay.http.rate_limit import RateLimitManagement, RateLimitScoring
from assay.predictions.context import ScoringContext, scoring_of
from assay.predictions.records import RecordFilter, list_records
from assay.predictions.schemas import (
    ModelRef,
    PredictionPage,
    PredictionRecordView,
    PredictionView,
    PredictRequest,
    PredictResponse,
    RowErrorView,
)
from assay.registry import repository as registry
from assay.registry import service
from assay.registry.models import ModelVersion, RegisteredModel
from assay.registry.schemas import (
    MAX_VERSION_NUMBER,
    AliasUpdate,
    AliasView,
    ModelCreate,
    ModelView,
    VersionView,
)
from assay.system.schemas import LoadedModelView, SystemInfo

# A version number in a path: bounded, so no database is asked for a number it cannot hold.
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION_NUMBER)]
router = APIRouter(prefix="/v1/models", tags=["models"])
records_router = APIRouter(prefix="/v1/predictions", tags=["predictions"])
system_router = APIRouter(prefix="/v1/system", tags=["system"])

Scoring = Annotated[ScoringContext, Depends(scoring_of)]
CanRead = Annotated[OrgPrincipal, Depends(require(Permission.MODELS_READ))]
CanWrite = Annotated[OrgPrincipal, Depends(require(Permission.MODELS_WRITE))]
CanPredict = Annotated[OrgPrincipal, Depends(require(Permission.PREDICT))]
CanReadPredictions = Annotated[OrgPrincipal, Depends(require(Permission.PREDICTIONS_READ))]
CanReadSystem = Annotated[OrgPrincipal, Depends(require(Permission.SYSTEM_READ))]
# A manifest is a small document; the artifact has the upload limit.
MAX_MANIFEST_CHARS = 1_000_000


def _version_view(version: ModelVersion) -> VersionView:
    view = VersionView.model_validate(version, from_attributes=True)
    view.signed_by = version.signer_fingerprint
    return view


async def _model_view(
    db: DbSession, principal: OrgPrincipal, model: RegisteredModel, *, detail: bool
) -> ModelView:
    aliases = await registry.aliases_of(db, principal, model)
    view = ModelView(
        id=model.id,
        name=model.name,
        kind=model.kind,
        description=model.description,
        created_at=model.created_at,
        aliases=aliases,
    )
    if detail:
        versions = await registry.versions_of(db, principal, model)
        view.versions = [_version_view(v) for v in versions]
        shown = next(
            (v for v in versions if v.version == aliases.get(registry.DEFAULT_ALIAS)),
            versions[-1] if versions else None,
        )
        view.input_schema = shown.definition["schema"] if shown else None
    return view


@router.get("", summary="Models of this organisation")
async def list_models(
    principal: CanRead, _limit: RateLimitManagement, db: DbSession
) -> list[ModelView]:
    return [
        await _model_view(db, principal, model, detail=False)
        for model in await registry.list_models(db, principal)
    ]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a model name and kind")
async def create_model(
    body: ModelCreate,
    request: Request,
    principal: CanWrite,
    _limit: RateLimitManagement,
    db: DbSession,
) -> ModelView:
    model = await registry.create_model(
        db,
        RequestMeta.of(request),
        principal,
        name=body.name,
        kind=body.kind,
        description=body.description,
    )
    return await _model_view(db, principal, model, detail=True)


@router.get("/{name}", summary="A model: versions, aliases, schema, digests, health")
async def read_model(
    name: str, principal: CanRead, _limit: RateLimitManagement, db: DbSession
) -> ModelView:
    model = await registry.get_model(db, principal, name)
    return await _model_view(db, principal, model, detail=True)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete (soft)")
async def delete_model(
    name: str,
    request: Request,
    principal: CanWrite,
    _limit: RateLimitManagement,
    db: DbSession,
    scoring: Scoring,
) -> None:
    model = await registry.get_model(db, principal, name)
    await service.delete_model(db, scoring.cache, RequestMeta.of(request), principal, model)
    scoring.predict.forget(principal.org_id, name)


def _refuse_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _load_manifest(text: str) -> Any:
    try:
        # JSON first, for JSON's meaning: YAML reads an escaped surrogate pair
        # ("\ud83d\ude80", as json.dumps writes any character beyond U+FFFF) as two
        # unpaired surrogates rather than as one character.
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return yaml.safe_load(text)


def _parse_manifest(text: str) -> dict[str, Any]:
    try:
        document = _load_manifest(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(
            "The manifest is not valid YAML or JSON.",
            errors=[{"field": "manifest", "code": "unparsable", "message": str(exc)[:300]}],
        ) from None
    except RecursionError:
        # Both parsers recurse once per nesting level; a manifest needs a handful.
        raise ValidationFailed(
            "The manifest is nested too deeply.",
            errors=[{"field": "manifest", "code": "too_deep", "message": "nested too deeply"}],
        ) from None
    if not isinstance(document, dict):
        raise ValidationFailed(
            "The manifest must be a mapping with 'schema' and 'spec'.",
            errors=[{"field": "manifest", "code": "not_a_mapping", "message": "not a mapping"}],
        )
    return document


@router.post(
    "/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Add an immutable version (multipart: manifest, artifact, signature)",
)
async def add_version(
    name: str,
    request: Request,
    principal: CanWrite,
    _limit: RateLimitManagement,
    db: DbSession,
    scoring: Scoring,
    _upload: AcceptsUpload,
    manifest: Annotated[str, Form(max_length=MAX_MANIFEST_CHARS)],
    artifact: Annotated[UploadFile | None, File()] = None,
    signature: Annotated[str | None, Form(max_length=200)] = None,
) -> VersionView:
    model = await registry.get_model(db, principal, name)
    data = await artifact.read() if artifact is not None else None
    # Checked, stored, added and loaded: a version that registers also loads and scores.
    registered = await service.register_version(
        db,
        scoring.store,
        scoring.cache,
        scoring.settings,
        RequestMeta.of(request),
        principal,
        model,
        manifest=_parse_manifest(manifest),
        artifact=data,
        signature=signature,
    )
    return _version_view(registered.version)


@router.get("/{name}/versions/{version}", summary="One version")
async def read_version(
    name: str,
    version: VersionNumber,
    principal: CanRead,
    _limit: RateLimitManagement,
    db: DbSession,
) -> VersionView:
    model = await registry.get_model(db, principal, name)
    found = await registry.resolve_version(
        db, principal, model, registry.VersionRef(version=version)
    )
    return _version_view(found)


@router.put("/{name}/aliases/{alias}", summary="Point an alias at a version (or roll back)")
async def set_alias(
    name: str,
    alias: str,
    body: AliasUpdate,
    request: Request,
    principal: CanWrite,
    _limit: RateLimitManagement,
    db: DbSession,
    scoring: Scoring,
) -> AliasView:
    model = await registry.get_model(db, principal, name)
    await service.move_alias(
        db,
        scoring.store,
        scoring.cache,
        scoring.settings,
        RequestMeta.of(request),
        principal,
        model,
        alias,
        body.version,
    )
    scoring.predict.forget(principal.org_id, name)
    return AliasView(model=name, alias=alias, version=body.version)


@router.post(
    "/{name}/versions/{version}/verify",
    summary="Check a version now: digest, signature, load; mark it healthy or unhealthy",
)
async def verify_version(
    name: str,
    version: VersionNumber,
    request: Request,
    principal: CanWrite,
    _limit: RateLimitManagement,
    db: DbSession,
    scoring: Scoring,
) -> VersionView:
    model = await registry.get_model(db, principal, name)
    found = await registry.resolve_version(
        db, principal, model, registry.VersionRef(version=version)
    )
    changed = await service.verify_version(
        db,
        scoring.store,
        scoring.cache,
        scoring.settings,
        RequestMeta.of(request),
        principal,
        found,
        model.name,
    )
    scoring.forget(changed)
    return _version_view(found)


# The predict answer is built from values the service produced and typed itself, so it
# is serialised once here rather than validated twice on its way out (FastAPI checks a
# returned model against the response model again): measurably cheaper per request.
_PREDICT_RESPONSE = TypeAdapter(PredictResponse)


@router.post(
    "/{name}/predict",
    summary="Score one record or a batch",
    response_model=PredictResponse,
    response_class=JSONResponse,
)
async def predict(
    name: str,
    body: PredictRequest,
    request: Request,
    principal: CanPredict,
    scoring: Scoring,
    _limit: RateLimitScoring,
    alias: Annotated[str | None, Query(max_length=64)] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION_NUMBER)] = None,
    strict: bool = False,
    explain: bool = True,
) -> Response:
    single = body.record is not None
    records: list[Any] = [body.record] if body.record is not None else body.records or []
    request_id = request.scope.get("state", {}).get("request_id")
    outcome = await scoring.predict.predict(
        principal,
        name,
        registry.VersionRef.parse(alias, version),
        records,
        strict=strict or single,
        explain=explain,
        request_id=request_id,
    )
    answer = PredictResponse.model_construct(
        model=ModelRef.model_construct(
            name=outcome.model.name,
            version=outcome.version.version,
            digest=outcome.version.content_digest,
            artifact_digest=outcome.version.artifact_digest,
        ),
        request_id=request_id,
        results=[
            PredictionView.model_construct(**result.as_dict())
            if isinstance(result, PredictionResult)
            else RowErrorView.model_construct(**result.as_dict())
            for result in outcome.results
        ],
    )
    return Response(_PREDICT_RESPONSE.dump_json(answer), media_type="application/json")


@records_router.get("", summary="Prediction records, newest first")
async def list_predictions(
    principal: CanReadPredictions,
    _limit: RateLimitManagement,
    db: DbSession,
    model: Annotated[str | None, Query(max_length=64)] = None,
    label: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        AwareIsoDatetime | None, Query(description="Inclusive; RFC 3339 with a UTC offset.")
    ] = None,
    until: Annotated[
        AwareIsoDatetime | None, Query(description="Exclusive; RFC 3339 with a UTC offset.")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PredictionPage:
    rows, next_cursor = await list_records(
        db,
        principal,
        RecordFilter(model=model, label=label, since=since, until=until),
        cursor=cursor,
        limit=limit,
    )
    return PredictionPage(
        items=[PredictionRecordView.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


@system_router.get("/info", summary="Versions, runtimes, loaded models and their health")
async def system_info(
    principal: CanReadSystem,
    _limit: RateLimitManagement,
    db: DbSession,
    scoring: Scoring,
    request: Request,
) -> SystemInfo:
    loaded = scoring.cache.loaded()
    models: list[dict[str, Any]] = []
    rows = await db.execute(
        scoped(principal, ModelVersion)
        .add_columns(RegisteredModel.name)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.deleted_at.is_(None))
        .order_by(RegisteredModel.name, ModelVersion.version)
    )
    loaded_ids = {entry.version_id for entry in loaded}
    own_ids = set()
    for version, model_name in rows.all():
        own_ids.add(version.id)
        models.append(
            {
                "model": model_name,
                "version": version.version,
                "status": version.status,
                "status_reason": version.status_reason,
                "content_digest": version.content_digest,
                "artifact_digest": version.artifact_digest,
                "loaded": version.id in loaded_ids,
            }
        )
    return SystemInfo(
        version=__version__,
        python=platform.python_version(),
        runtimes=runtime_versions(),
        database=request.app.state.database.dialect,
        cache=request.app.state.cache.backend,
        loaded_models=[
            LoadedModelView(
                model=entry.scorer.name or "",
                version_id=entry.version_id,
                kind=entry.scorer.kind,
                content_digest=entry.content_digest,
            )
            for entry in loaded
            if entry.version_id in own_ids
        ],
        models=models,
    )
