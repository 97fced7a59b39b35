"""Queries of the model registry: models, versions, aliases and publisher keys.

Every query starts from `scoped` (one organisation), or says why it spans them
(`across_tenants`). Writes, and the rules around them, are in `assay.registry.service`.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.errors import NotFound
from assay.core.tenancy import HasOrganisation, across_tenants, scope_statement, scoped
from assay.registry.health import HEALTHY
from assay.registry.models import ModelAlias, ModelVersion, PublisherKey, RegisteredModel
from assay.registry.schemas import VersionRef


async def get_model(db: AsyncSession, principal: HasOrganisation, name: str) -> RegisteredModel:
    """The organisation's model named `name` (not deleted), or `NotFound`."""
    model = (
        await db.execute(
            scoped(principal, RegisteredModel).where(
                RegisteredModel.name == name, RegisteredModel.deleted_at.is_(None)
            )
        )
    ).scalar_one_or_none()
    if model is None:
        raise NotFound(f"No model named '{name}'.")
    return model


async def model_name_used(db: AsyncSession, principal: HasOrganisation, name: str) -> bool:
    """Whether the organisation has, or had, a model of this name (names are never reused)."""
    existing = await db.execute(
        scoped(principal, RegisteredModel).where(RegisteredModel.name == name)
    )
    return existing.first() is not None


async def list_models(db: AsyncSession, principal: HasOrganisation) -> list[RegisteredModel]:
    rows = await db.execute(
        scoped(principal, RegisteredModel)
        .where(RegisteredModel.deleted_at.is_(None))
        .order_by(RegisteredModel.name)
    )
    return list(rows.scalars())


async def versions_of(
    db: AsyncSession, principal: HasOrganisation, model: RegisteredModel
) -> list[ModelVersion]:
    rows = await db.execute(
        scoped(principal, ModelVersion)
        .where(ModelVersion.model_id == model.id)
        .order_by(ModelVersion.version)
    )
    return list(rows.scalars())


async def aliases_of(
    db: AsyncSession, principal: HasOrganisation, model: RegisteredModel
) -> dict[str, int]:
    rows = await db.execute(
        scoped(principal, ModelAlias)
        .add_columns(ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id == model.id)
        .order_by(ModelAlias.alias)
    )
    return {alias.alias: number for alias, number in rows.all()}


async def resolve_version(
    db: AsyncSession, principal: HasOrganisation, model: RegisteredModel, ref: VersionRef
) -> ModelVersion:
    """The version `ref` names, or `NotFound` saying which number or alias is missing."""
    statement = scoped(principal, ModelVersion).where(ModelVersion.model_id == model.id)
    if ref.version is not None:
        statement = statement.where(ModelVersion.version == ref.version)
        missing = f"Model '{model.name}' has no version {ref.version}."
    else:
        statement = statement.join(ModelAlias, ModelAlias.version_id == ModelVersion.id).where(
            ModelAlias.alias == ref.alias
        )
        missing = f"Model '{model.name}' has no alias '{ref.alias}'."
    version = (await db.execute(statement)).scalar_one_or_none()
    if version is None:
        raise NotFound(missing)
    return version


async def find_identical(
    db: AsyncSession, principal: HasOrganisation, model: RegisteredModel, content_digest: str
) -> ModelVersion | None:
    """The model's newest version with exactly this content, if there is one."""
    rows = await db.execute(
        scoped(principal, ModelVersion)
        .where(ModelVersion.model_id == model.id, ModelVersion.content_digest == content_digest)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def next_version_number(
    db: AsyncSession, principal: HasOrganisation, model: RegisteredModel
) -> int:
    latest = await db.execute(
        scope_statement(
            principal,
            select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id),
            ModelVersion,
        )
    )
    return int(latest.scalar_one() or 0) + 1


async def find_alias(
    db: AsyncSession, principal: HasOrganisation, model: RegisteredModel, alias: str
) -> ModelAlias | None:
    rows = await db.execute(
        scoped(principal, ModelAlias).where(
            ModelAlias.model_id == model.id, ModelAlias.alias == alias
        )
    )
    return rows.scalar_one_or_none()


async def version_number_of(
    db: AsyncSession, principal: HasOrganisation, alias: ModelAlias
) -> int | None:
    """The number of the version an alias points at (None if that version is gone)."""
    rows = await db.execute(
        scoped(principal, ModelVersion).where(ModelVersion.id == alias.version_id)
    )
    version = rows.scalar_one_or_none()
    return version.version if version else None


async def versions_with_model_names(
    db: AsyncSession, principal: HasOrganisation
) -> list[tuple[ModelVersion, str]]:
    """Every version of the organisation's models (not deleted), by name and number."""
    rows = await db.execute(
        scoped(principal, ModelVersion)
        .add_columns(RegisteredModel.name)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.deleted_at.is_(None))
        .order_by(RegisteredModel.name, ModelVersion.version)
    )
    return [(version, name) for version, name in rows.all()]


async def find_publisher_key(
    db: AsyncSession, principal: HasOrganisation, fingerprint: str
) -> PublisherKey | None:
    rows = await db.execute(
        scoped(principal, PublisherKey).where(PublisherKey.fingerprint == fingerprint)
    )
    return rows.scalar_one_or_none()


async def list_publisher_keys(db: AsyncSession, principal: HasOrganisation) -> list[PublisherKey]:
    rows = await db.execute(scoped(principal, PublisherKey).order_by(PublisherKey.created_at))
    return list(rows.scalars())


async def healthy_versions_signed_by(
    db: AsyncSession, principal: HasOrganisation, fingerprint: str
) -> list[tuple[ModelVersion, str]]:
    rows = await db.execute(
        scoped(principal, ModelVersion)
        .add_columns(RegisteredModel.name)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(ModelVersion.signer_fingerprint == fingerprint, ModelVersion.status == HEALTHY)
    )
    return [(version, name) for version, name in rows.all()]


async def aliased_versions_of_every_organisation(
    db: AsyncSession,
) -> list[tuple[ModelVersion, str]]:
    rows = await db.execute(
        across_tenants(
            select(ModelVersion, RegisteredModel.name)
            .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
            .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
            .where(RegisteredModel.deleted_at.is_(None))
            .distinct(),
            "preloading every aliased model version at start",
        )
    )
    return [(version, name) for version, name in rows.all()]


async def artifact_versions_of_every_organisation(
    db: AsyncSession,
) -> list[tuple[ModelVersion, str]]:
    rows = await db.execute(
        across_tenants(
            select(ModelVersion, RegisteredModel.name)
            .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
            .where(ModelVersion.artifact_digest.is_not(None))
            .order_by(RegisteredModel.name, ModelVersion.version),
            "verifying every stored artifact",
        )
    )
    return [(version, name) for version, name in rows.all()]
