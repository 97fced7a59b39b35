"""/v1/targets: the AI endpoints the organisation scans, and their write-only secrets."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Path, Request, status

from assay.audit.service import RequestMeta
from assay.core.db import DbSession
from assay.http.rate_limit import RateLimitManagement
from assay.targets.deps import CanManageTargets, CanReadTargets, Targets
from assay.targets.models import TargetRow
from assay.targets.schemas import (
    TargetCheck,
    TargetCredentialSet,
    TargetKind,
    TargetSave,
    TargetView,
)

router = APIRouter(prefix="/v1/targets", tags=["targets"])
TargetName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]


def view(row: TargetRow) -> TargetView:
    return TargetView(
        name=row.name,
        kind=cast(TargetKind, row.kind),  # written from TargetKind only
        url=row.url,
        description=row.description,
        model=row.model,
        temperature=row.temperature,
        rest=row.rest,
        credential_header=row.credential_header,
        credential_scheme=row.credential_scheme,
        credential_set=row.credential_encrypted is not None,
        system_prompt_set=row.system_prompt_encrypted is not None,
        requests_per_minute=row.requests_per_minute,
        concurrency=row.concurrency,
        timeout_seconds=row.timeout_seconds,
        max_retries=row.max_retries,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.get("", summary="The organisation's scan targets")
async def list_targets(
    principal: CanReadTargets, _limit: RateLimitManagement, db: DbSession, targets: Targets
) -> list[TargetView]:
    return [view(row) for row in await targets.list(db, principal)]


@router.get("/{name}", summary="One scan target")
async def get_target(
    name: TargetName,
    principal: CanReadTargets,
    _limit: RateLimitManagement,
    db: DbSession,
    targets: Targets,
) -> TargetView:
    return view(await targets.get(db, principal, name))


@router.put(
    "/{name}",
    summary="Register or replace a scan target (its credential is kept)",
    responses={422: {"description": "The target cannot be used (target-invalid)"}},
)
async def save_target(
    name: TargetName,
    body: TargetSave,
    request: Request,
    principal: CanManageTargets,
    _limit: RateLimitManagement,
    db: DbSession,
    targets: Targets,
) -> TargetView:
    row = await targets.save(db, principal, name, body, meta=RequestMeta.of(request))
    return view(row)


@router.put(
    "/{name}/credential",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set or clear the target's API key (write-only)",
)
async def set_target_credential(
    name: TargetName,
    body: TargetCredentialSet,
    request: Request,
    principal: CanManageTargets,
    _limit: RateLimitManagement,
    db: DbSession,
    targets: Targets,
) -> None:
    await targets.set_credential(db, principal, name, body.credential, meta=RequestMeta.of(request))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a scan target")
async def delete_target(
    name: TargetName,
    request: Request,
    principal: CanManageTargets,
    _limit: RateLimitManagement,
    db: DbSession,
    targets: Targets,
) -> None:
    await targets.delete(db, principal, name, meta=RequestMeta.of(request))


@router.post(
    "/{name}/check",
    summary="Send the target one harmless prompt and say what came back",
)
async def check_target(
    name: TargetName,
    principal: CanManageTargets,
    _limit: RateLimitManagement,
    db: DbSession,
    targets: Targets,
) -> TargetCheck:
    answer = await targets.check(db, principal, name)
    return TargetCheck(
        ok=answer.status == "answered",
        status=answer.status,
        detail=answer.detail,
        latency_ms=answer.latency_ms,
        answer_excerpt=answer.text[:200] if answer.text is not None else None,
    )
