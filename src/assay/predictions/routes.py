"""The native predict route and the prediction records, over the API.

The predict route is also served by `assay.predictions.fast_path`, which runs this
route's own dependencies and function without the framework's routing; keep its
declaration within what that plan accepts (it says so at start-up otherwise).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter

from assay.audit.deps import AuditedReads
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta
from assay.core.db import DbSession
from assay.core.paging import Cursor, PageLimit, Since, Until
from assay.engine.results import PredictionResult
from assay.http.rate_limit import RateLimitManagement, RateLimitScoring
from assay.predictions.deps import (
    CanPredict,
    CanReadPredictions,
    CanRevealPredictions,
    Predictions,
)
from assay.predictions.records import RecordFilter
from assay.predictions.schemas import (
    CACHE_HEADER,
    ModelRef,
    PredictionPage,
    PredictionRecordView,
    PredictionView,
    PredictRequest,
    PredictResponse,
    RevealedInputs,
    RowErrorView,
)
from assay.registry.schemas import MAX_VERSION_NUMBER, VersionRef

router = APIRouter(prefix="/v1/models", tags=["models"])
records_router = APIRouter(prefix="/v1/predictions", tags=["predictions"])

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
    predictions: Predictions,
    _limit: RateLimitScoring,
    alias: Annotated[str | None, Query(max_length=64)] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION_NUMBER)] = None,
    strict: bool = False,
    explain: bool = True,
) -> Response:
    single = body.record is not None
    records: list[Any] = [body.record] if body.record is not None else body.records or []
    request_id = request.scope.get("state", {}).get("request_id")
    outcome = await predictions.predict(
        principal,
        name,
        VersionRef.parse(alias, version),
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
    # A single record says what the prediction cache did; a batch is not cached.
    headers = None if outcome.cache is None else {CACHE_HEADER: outcome.cache.value}
    return Response(
        _PREDICT_RESPONSE.dump_json(answer), media_type="application/json", headers=headers
    )


@records_router.get(
    "/{record_id}/inputs",
    summary="One record's inputs with its sealed personal-data fields opened (audited)",
)
async def reveal_inputs(
    record_id: uuid.UUID,
    request: Request,
    reads: AuditedReads,
    principal: CanRevealPredictions,
    _limit: RateLimitManagement,
    db: DbSession,
    predictions: Predictions,
) -> RevealedInputs:
    record, inputs = await predictions.record_inputs(db, principal, record_id)
    sealed = sorted(set(inputs) - set(record.inputs))
    reads.note(
        RequestMeta.of(request),
        principal,
        SecurityAction.PREDICTION_INPUTS_REVEALED,
        target_kind="prediction_record",
        target_id=record.id,
        details={"model": record.model_name, "fields": sealed},
    )
    return RevealedInputs(
        record_id=record.id, model_name=record.model_name, inputs=inputs, sealed_fields=sealed
    )


@records_router.get("", summary="Prediction records, newest first")
async def list_predictions(
    principal: CanReadPredictions,
    _limit: RateLimitManagement,
    db: DbSession,
    predictions: Predictions,
    model: Annotated[str | None, Query(max_length=64)] = None,
    label: Annotated[str | None, Query(max_length=64)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> PredictionPage:
    rows, next_cursor = await predictions.list_records(
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
