"""/v1/providers: the organisation's evidence providers, their credentials and breakers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status

from assay.audit.deps import AuditedReads
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta
from assay.core.db import DbSession
from assay.http.rate_limit import RateLimitManagement
from assay.providers.deps import CanManageProviders, CanReadProviders, Providers
from assay.providers.schemas import (
    BreakerStatus,
    ProviderCredentialSet,
    ProviderDetail,
    ProviderHealth,
    ProviderSave,
    ProviderView,
)
from assay.providers.service import ProviderOverview

router = APIRouter(prefix="/v1/providers", tags=["providers"])
ProviderName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "The definition is not valid (provider-invalid); errors name each problem"}
}


def _view(overview: ProviderOverview) -> dict[str, Any]:
    row, definition, breaker = overview.row, overview.provider.definition, overview.breaker
    credential = definition.credential
    return {
        "name": row.name,
        "title": definition.title,
        "description": definition.description,
        "supports": [str(kind) for kind in overview.provider.supports],
        "base_url": overview.base_url,
        "enabled": row.enabled,
        "credential_required": credential is not None and credential.required,
        "credential_set": row.credential_encrypted is not None,
        "credential_updated_at": row.credential_updated_at,
        "rate_limit": definition.rate_limit,
        "breaker": BreakerStatus(
            state=str(breaker.state),
            recent_failures=breaker.failures,
            cooldown_until=(
                datetime.fromtimestamp(breaker.cooldown_until, UTC)
                if breaker.cooldown_until is not None
                else None
            ),
        ),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


@router.get("", summary="The organisation's providers, with their breaker state")
async def list_providers(
    request: Request,
    reads: AuditedReads,
    principal: CanReadProviders,
    _limit: RateLimitManagement,
    db: DbSession,
    providers: Providers,
) -> list[ProviderView]:
    overviews = await providers.overview(db, principal)
    # Which providers hold a credential, and since when: metadata an attacker maps first.
    reads.note(
        RequestMeta.of(request),
        principal,
        SecurityAction.PROVIDERS_READ,
        target_kind="provider",
        details={"providers": len(overviews)},
    )
    return [ProviderView(**_view(o)) for o in overviews]


@router.get("/{name}", summary="One provider, with its definition")
async def get_provider(
    name: ProviderName,
    request: Request,
    reads: AuditedReads,
    principal: CanReadProviders,
    _limit: RateLimitManagement,
    db: DbSession,
    providers: Providers,
) -> ProviderDetail:
    overview = await providers.overview_of(db, principal, name)
    reads.note(
        RequestMeta.of(request),
        principal,
        SecurityAction.PROVIDERS_READ,
        target_kind="provider",
        target_id=overview.row.id,
        details={"name": name},
    )
    return ProviderDetail(**_view(overview), definition=overview.row.definition)


@router.put(
    "/{name}",
    summary="Register or replace a provider from its definition (the credential is kept)",
    responses=_INVALID,
)
async def save_provider(
    name: ProviderName,
    body: ProviderSave,
    request: Request,
    principal: CanManageProviders,
    _limit: RateLimitManagement,
    db: DbSession,
    providers: Providers,
) -> ProviderDetail:
    await providers.save(
        db, principal, name, body.definition, enabled=body.enabled, meta=RequestMeta.of(request)
    )
    overview = await providers.overview_of(db, principal, name)
    return ProviderDetail(**_view(overview), definition=overview.row.definition)


@router.put(
    "/{name}/credential",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set or clear the provider's API key (write-only)",
)
async def set_provider_credential(
    name: ProviderName,
    body: ProviderCredentialSet,
    request: Request,
    principal: CanManageProviders,
    _limit: RateLimitManagement,
    db: DbSession,
    providers: Providers,
) -> None:
    await providers.set_credential(
        db, principal, name, body.credential, meta=RequestMeta.of(request)
    )


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a provider")
async def delete_provider(
    name: ProviderName,
    request: Request,
    principal: CanManageProviders,
    _limit: RateLimitManagement,
    db: DbSession,
    providers: Providers,
) -> None:
    await providers.delete(db, principal, name, meta=RequestMeta.of(request))


@router.post(
    "/{name}/health-check",
    summary="Ask whether the provider answers now (a plugin's own check, or its base URL)",
)
async def check_provider_health(
    name: ProviderName,
    principal: CanManageProviders,
    _limit: RateLimitManagement,
    db: DbSession,
    providers: Providers,
) -> ProviderHealth:
    healthy, detail = await providers.health(db, principal, name)
    return ProviderHealth(healthy=healthy, detail=detail)
