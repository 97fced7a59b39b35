"""Model management over the API: models, versions, aliases, and the organisation's
trusted publisher keys. Each route makes one `ModelRegistry` call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Request, UploadFile, status

from assay.audit.service import RequestMeta
from assay.core.db import DbSession
from assay.http.body_limit import AcceptsUpload
from assay.http.rate_limit import RateLimitManagement
from assay.registry.deps import CanManageKeys, CanReadModels, CanWriteModels, Registry
from assay.registry.schemas import (
    MAX_MANIFEST_CHARS,
    MAX_VERSION_NUMBER,
    AliasUpdate,
    AliasView,
    ModelCreate,
    ModelView,
    PublisherKeyCreate,
    PublisherKeyView,
    VersionView,
)

# A version number in a path: bounded, so no database is asked for a number it cannot hold.
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION_NUMBER)]
router = APIRouter(prefix="/v1/models", tags=["models"])
keys_router = APIRouter(prefix="/v1/org/publisher-keys", tags=["models"])


@router.get("", summary="Models of this organisation")
async def list_models(
    principal: CanReadModels, _limit: RateLimitManagement, db: DbSession, registry: Registry
) -> list[ModelView]:
    return await registry.list_models(db, principal)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a model name and kind")
async def create_model(
    body: ModelCreate,
    request: Request,
    principal: CanWriteModels,
    _limit: RateLimitManagement,
    db: DbSession,
    registry: Registry,
) -> ModelView:
    return await registry.create_model(
        db,
        RequestMeta.of(request),
        principal,
        name=body.name,
        kind=body.kind,
        description=body.description,
    )


@router.get("/{name}", summary="A model: versions, aliases, schema, digests, health")
async def read_model(
    name: str,
    principal: CanReadModels,
    _limit: RateLimitManagement,
    db: DbSession,
    registry: Registry,
) -> ModelView:
    return await registry.describe_model(db, principal, name)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete (soft)")
async def delete_model(
    name: str,
    request: Request,
    principal: CanWriteModels,
    _limit: RateLimitManagement,
    db: DbSession,
    registry: Registry,
) -> None:
    await registry.delete_model(db, RequestMeta.of(request), principal, name)


@router.post(
    "/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Add an immutable version (multipart: manifest, artifact, signature)",
)
async def add_version(
    name: str,
    request: Request,
    principal: CanWriteModels,
    _limit: RateLimitManagement,
    db: DbSession,
    registry: Registry,
    _upload: AcceptsUpload,
    manifest: Annotated[str, Form(max_length=MAX_MANIFEST_CHARS)],
    artifact: Annotated[UploadFile | None, File()] = None,
    signature: Annotated[str | None, Form(max_length=200)] = None,
) -> VersionView:
    version = await registry.add_version(
        db,
        RequestMeta.of(request),
        principal,
        name,
        manifest_text=manifest,
        artifact=await artifact.read() if artifact is not None else None,
        signature=signature,
    )
    return VersionView.of(version)


@router.get("/{name}/versions/{version}", summary="One version")
async def read_version(
    name: str,
    version: VersionNumber,
    principal: CanReadModels,
    _limit: RateLimitManagement,
    db: DbSession,
    registry: Registry,
) -> VersionView:
    return VersionView.of(await registry.get_version(db, principal, name, version))


@router.put("/{name}/aliases/{alias}", summary="Point an alias at a version (or roll back)")
async def set_alias(
    name: str,
    alias: str,
    body: AliasUpdate,
    request: Request,
    principal: CanWriteModels,
    _limit: RateLimitManagement,
    db: DbSession,
    registry: Registry,
) -> AliasView:
    await registry.move_alias(db, RequestMeta.of(request), principal, name, alias, body.version)
    return AliasView(model=name, alias=alias, version=body.version)


@router.post(
    "/{name}/versions/{version}/verify",
    summary="Check a version now: digest, signature, load; mark it healthy or unhealthy",
)
async def verify_version(
    name: str,
    version: VersionNumber,
    request: Request,
    principal: CanWriteModels,
    _limit: RateLimitManagement,
    db: DbSession,
    registry: Registry,
) -> VersionView:
    checked = await registry.verify_version(db, RequestMeta.of(request), principal, name, version)
    return VersionView.of(checked)


@keys_router.get("", summary="Publisher keys whose signatures this organisation trusts")
async def list_publisher_keys(
    principal: CanManageKeys, _limit: RateLimitManagement, db: DbSession, registry: Registry
) -> list[PublisherKeyView]:
    keys = await registry.keys.list_keys(db, principal)
    return [PublisherKeyView.model_validate(k, from_attributes=True) for k in keys]


@keys_router.post("", status_code=status.HTTP_201_CREATED, summary="Trust a publisher key")
async def trust_publisher_key(
    body: PublisherKeyCreate,
    request: Request,
    principal: CanManageKeys,
    _limit: RateLimitManagement,
    db: DbSession,
    registry: Registry,
) -> PublisherKeyView:
    key = await registry.keys.trust_key(
        db, RequestMeta.of(request), principal, name=body.name, public_key=body.public_key
    )
    return PublisherKeyView.model_validate(key, from_attributes=True)


@keys_router.delete(
    "/{fingerprint}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop trusting a publisher key; the versions it signed stop serving",
)
async def revoke_publisher_key(
    fingerprint: Annotated[str, Path(max_length=64)],
    request: Request,
    principal: CanManageKeys,
    _limit: RateLimitManagement,
    db: DbSession,
    registry: Registry,
) -> None:
    await registry.keys.revoke_key(db, RequestMeta.of(request), principal, fingerprint)
