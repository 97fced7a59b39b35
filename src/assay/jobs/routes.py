"""Jobs over the API: submit (JSON or a file), list, read, cancel, follow, result."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import iterate_in_threadpool

from assay.core.db import DbSession
from assay.core.errors import UnsupportedMediaType, ValidationFailed
from assay.core.paging import Cursor, PageLimit, Since, Until
from assay.core.principal import OrgPrincipal
from assay.http.body_limit import AcceptsUpload
from assay.http.rate_limit import RateLimitManagement, RateLimitScoring
from assay.jobs.deps import CanReadJobs, CanWriteJobs, Jobs
from assay.jobs.schemas import (
    BatchScoreParams,
    JobCreate,
    JobKindName,
    JobPage,
    JobStateName,
    JobView,
    KindJobCreate,
    ResultFormat,
)
from assay.jobs.service import BATCH_SCORE, JobFilter, JobService
from assay.jobs.store import InputFormat

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its `$defs` references replaced by the definitions (the OpenAPI
    document's components do not hold them)."""
    definitions = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return walk(definitions[reference.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


_MEDIA_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _inlined(JobCreate.model_json_schema()),
                        _inlined(KindJobCreate.model_json_schema()),
                    ]
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "kind": {"type": "string", "maxLength": 40, "default": "batch_score"},
                        "model": {"type": "string", "maxLength": 100},
                        "alias": {"type": "string", "maxLength": 64},
                        "version": {"type": "integer", "minimum": 1},
                        "explain": {"type": "boolean"},
                        "format": {"type": "string", "enum": ["csv", "jsonl"]},
                    },
                }
            },
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit a job: JSON (kind + params) or a CSV/JSONL file for batch scoring",
    openapi_extra=_SUBMIT_BODY,
)
async def submit_job(
    request: Request,
    principal: CanWriteJobs,
    _limit: RateLimitScoring,
    db: DbSession,
    jobs: Jobs,
    _upload: AcceptsUpload,
) -> JobView:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return JobView.of(await _submit_upload(request, principal, db, jobs))
    if content_type.split(";")[0].strip() not in ("application/json",) and not content_type.split(
        ";"
    )[0].endswith("+json"):
        raise UnsupportedMediaType("Send application/json or multipart/form-data.")
    raw = await request.body()
    kind_name = _kind_of(raw)
    if kind_name is not None and kind_name != BATCH_SCORE:
        return JobView.of(await _submit_kind(raw, kind_name, principal, db, jobs))
    try:
        body = JobCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc, "params") from None
    return JobView.of(await jobs.submit(db, principal, body.params))


def _kind_of(raw: bytes) -> str | None:
    """The body's `kind`, when it is a JSON object naming one (else the strict parse of
    JobCreate reports what is wrong)."""
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    kind = document.get("kind") if isinstance(document, dict) else None
    return kind if isinstance(kind, str) else None


async def _submit_kind(
    raw: bytes, kind_name: str, principal: OrgPrincipal, db: DbSession, jobs: JobService
) -> Any:
    kind = jobs.kind(kind_name)
    try:
        body = KindJobCreate.model_validate_json(raw)
        records = body.params.pop("records", None)
        if records is not None and (not isinstance(records, list) or not records):
            raise ValidationFailed(
                "params.records is a non-empty list of rows.",
                errors=[{"field": "params.records", "code": "list_type", "message": "a list"}],
            )
        params = kind.params_model.model_validate(body.params, strict=True)
    except ValidationError as exc:
        raise _invalid(exc, "params") from None
    return await jobs.submit_kind(db, principal, kind, params, records)


async def _submit_upload(
    request: Request, principal: OrgPrincipal, db: DbSession, jobs: JobService
) -> Any:
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationFailed(
                "Attach the input as the form field 'file'.",
                errors=[{"field": "file", "code": "required", "message": "required"}],
            )
        fields = {
            k: v for k, v in form.items() if k not in ("file", "format") and isinstance(v, str)
        }
        if "records" in fields:
            raise ValidationFailed(
                "An upload brings its records in the file, not in a form field.",
                errors=[{"field": "records", "code": "extra_forbidden", "message": "not allowed"}],
            )
        kind_name = fields.pop("kind", BATCH_SCORE)
        fmt = _input_format(form.get("format"), upload.filename, upload.content_type)
        if kind_name != BATCH_SCORE:
            kind = jobs.kind(kind_name)
            try:
                # Form fields are text by nature ("true" is true); lists come as JSON.
                kind_params = kind.params_model.model_validate(_form_values(fields), strict=False)
            except ValidationError as exc:
                raise _invalid(exc, "form") from None
            return await jobs.submit_kind(
                db, principal, kind, kind_params, None, upload=upload.file, fmt=fmt
            )
        try:
            # Form fields are text by nature: "2" is the version 2 and "true" is true,
            # which the strict JSON body would refuse. Everything else is checked as strictly.
            params = BatchScoreParams.model_validate(fields, strict=False)
        except ValidationError as exc:
            raise _invalid(exc, "form") from None
        return await jobs.submit(db, principal, params, upload=upload.file, fmt=fmt)


def _form_values(fields: dict[str, str]) -> dict[str, Any]:
    """Form fields as the params model reads them: a JSON list stays a list."""
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if value.startswith("["):
            try:
                values[name] = json.loads(value)
                continue
            except ValueError:
                pass
        values[name] = value
    return values


def _input_format(declared: object, filename: str | None, content_type: str | None) -> InputFormat:
    if declared in ("csv", "jsonl"):
        return "csv" if declared == "csv" else "jsonl"
    name = (filename or "").lower()
    if name.endswith(".csv") or (content_type or "").startswith("text/csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")) or "ndjson" in (content_type or ""):
        return "jsonl"
    raise ValidationFailed(
        "Say the file's format: a .csv or .jsonl name, or the form field format=csv|jsonl.",
        errors=[{"field": "format", "code": "required", "message": "csv or jsonl"}],
    )


def _invalid(exc: ValidationError, where: str) -> ValidationFailed:
    return ValidationFailed(
        errors=[
            {
                "field": ".".join([where, *(str(p) for p in error["loc"])]),
                "code": error["type"],
                "message": error["msg"],
            }
            for error in exc.errors(include_url=False, include_input=False)
        ]
    )


@router.get("", summary="Jobs of this organisation, newest first")
async def list_jobs(
    principal: CanReadJobs,
    _limit: RateLimitManagement,
    db: DbSession,
    jobs: Jobs,
    kind: JobKindName | None = None,
    state: JobStateName | None = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> JobPage:
    rows, next_cursor = await jobs.list_jobs(
        db,
        principal,
        JobFilter(kind=kind, state=state, since=since, until=until),
        cursor=cursor,
        limit=limit,
    )
    return JobPage(items=[JobView.of(job) for job in rows], next_cursor=next_cursor)


@router.get("/{job_id}", summary="One job: state, progress, attempts, error")
async def read_job(
    job_id: uuid.UUID,
    principal: CanReadJobs,
    _limit: RateLimitManagement,
    db: DbSession,
    jobs: Jobs,
) -> JobView:
    return JobView.of(await jobs.get(db, principal, job_id))


@router.post(
    "/{job_id}/cancel", summary="Cancel: a queued job at once, a running one at its next checkpoint"
)
async def cancel_job(
    job_id: uuid.UUID,
    principal: CanWriteJobs,
    _limit: RateLimitManagement,
    db: DbSession,
    jobs: Jobs,
) -> JobView:
    return JobView.of(await jobs.cancel(db, principal, job_id))


@router.get(
    "/{job_id}/events",
    summary="Server-sent events: state changes and progress, then done (resumable)",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    job_id: uuid.UUID,
    principal: CanReadJobs,
    _limit: RateLimitManagement,
    db: DbSession,
    jobs: Jobs,
    last_event_id: Annotated[int | None, Header(ge=0, le=2_147_483_647)] = None,
) -> EventSourceResponse:
    await jobs.get(db, principal, job_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for event in jobs.events(principal, job_id, last_event_id):
            yield ServerSentEvent(data=_json(event.data), event=event.event, id=str(event.id))

    return EventSourceResponse(
        stream(), ping=jobs.settings.jobs_events_ping_seconds, headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/{job_id}/result",
    summary="The result rows, as CSV or JSON lines (partial for a cancelled or failed job)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
async def job_result(
    job_id: uuid.UUID,
    principal: CanReadJobs,
    _limit: RateLimitManagement,
    db: DbSession,
    jobs: Jobs,
    format: ResultFormat | None = None,
    accept: Annotated[str | None, Header(max_length=1000)] = None,
) -> StreamingResponse:
    fmt: ResultFormat = format or ("csv" if accept and "text/csv" in accept else "jsonl")
    job, ranges = await jobs.result(db, principal, job_id)
    headers = {
        "Content-Disposition": f'attachment; filename="job-{job.id}.{fmt}"',
        "Assay-Result-Partial": "true" if job.partial else "false",
    }
    return StreamingResponse(
        iterate_in_threadpool(jobs.render_result(job, ranges, fmt)),
        media_type=_MEDIA_TYPES[fmt],
        headers=headers,
    )


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))
