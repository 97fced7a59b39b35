"""The model registry: named models, immutable versions, movable aliases."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.service import RequestMeta, record_event
from assay.core.errors import Conflict, NotFound, ValidationFailed
from assay.core.principal import OrgPrincipal
from assay.core.schemas import UNSTORABLE_MESSAGES, find_unstorable_text
from assay.core.tenancy import scope_statement, scoped
from assay.engine.errors import ArtifactIntegrityError, UntrustedArtifact
from assay.engine.formats import PICKLE_REFUSED, ArtifactFormat, check_artifact_format
from assay.engine.integrity import (
    TrustedPublisherKey,
    decode_signature,
    encode_signature,
    sha256_digest,
    verify_signature,
)
from assay.engine.schema.input_schema import compile_schema
from assay.engine.spec import MLModelSpec, parse_model_spec
from assay.registry.artifact_store import ArtifactStore
from assay.registry.models import ModelAlias, ModelVersion, RegisteredModel

DEFAULT_ALIAS = "production"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_ALIAS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PII_MODES = ("encrypt", "drop")


@dataclass(frozen=True, slots=True)
class VersionRef:
    """How a caller names a version: an alias or a number."""

    alias: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, alias: str | None, version: int | None) -> VersionRef:
        if version is not None:
            return cls(version=version)
        return cls(alias=alias or DEFAULT_ALIAS)


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValidationFailed(
            "Model names are lower-case letters, digits, '.', '_' and '-' (max 64).",
            errors=[{"field": "name", "code": "invalid_name", "message": "invalid model name"}],
        )


def check_alias(alias: str) -> None:
    if not _ALIAS.match(alias):
        raise ValidationFailed(
            "Aliases are lower-case letters, digits, '_' and '-' (max 64).",
            errors=[{"field": "alias", "code": "invalid_alias", "message": "invalid alias"}],
        )


def content_digest(definition: dict[str, Any], artifact_digest: str | None) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{canonical}\n{artifact_digest or ''}".encode()).hexdigest()


async def get_model(db: AsyncSession, principal: OrgPrincipal, name: str) -> RegisteredModel:
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


async def list_models(db: AsyncSession, principal: OrgPrincipal) -> list[RegisteredModel]:
    rows = await db.execute(
        scoped(principal, RegisteredModel)
        .where(RegisteredModel.deleted_at.is_(None))
        .order_by(RegisteredModel.name)
    )
    return list(rows.scalars())


async def create_model(
    db: AsyncSession,
    meta: RequestMeta,
    principal: OrgPrincipal,
    *,
    name: str,
    kind: str,
    description: str,
) -> RegisteredModel:
    _check_name(name)
    existing = await db.execute(
        scoped(principal, RegisteredModel).where(RegisteredModel.name == name)
    )
    if existing.first() is not None:
        raise Conflict(f"A model named '{name}' exists (names are never reused).")
    model = RegisteredModel(
        org_id=principal.org_id,
        name=name,
        kind=kind,
        description=description,
        created_by=principal.actor_id,
    )
    db.add(model)
    await db.flush()
    record_event(
        db,
        meta,
        action="model.created",
        actor=principal,
        target_kind="model",
        target_id=model.id,
        details={"name": name, "kind": kind},
    )
    return model


async def versions_of(
    db: AsyncSession, principal: OrgPrincipal, model: RegisteredModel
) -> list[ModelVersion]:
    rows = await db.execute(
        scoped(principal, ModelVersion)
        .where(ModelVersion.model_id == model.id)
        .order_by(ModelVersion.version)
    )
    return list(rows.scalars())


async def aliases_of(
    db: AsyncSession, principal: OrgPrincipal, model: RegisteredModel
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
    db: AsyncSession, principal: OrgPrincipal, model: RegisteredModel, ref: VersionRef
) -> ModelVersion:
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


async def _pin_components(
    db: AsyncSession, principal: OrgPrincipal, spec_document: dict[str, Any]
) -> dict[str, int]:
    """Ensembles name their components; the version pins exactly which ones."""
    pins: dict[str, int] = {}
    for index, component in enumerate(spec_document.get("components", [])):
        name = component.get("model")
        try:
            model = await get_model(db, principal, str(name))
            ref = VersionRef.parse(component.get("alias"), component.get("version"))
            version = await resolve_version(db, principal, model, ref)
        except NotFound as exc:
            raise ValidationFailed(
                f"Ensemble component {index} ({name}) cannot be resolved: {exc.detail}",
                errors=[
                    {
                        "field": f"spec.components.{index}.model",
                        "code": "unknown_component",
                        "message": exc.detail,
                    }
                ],
            ) from None
        pins[str(name)] = version.version
    return pins


@dataclass(frozen=True, slots=True)
class PreparedVersion:
    """A new version, checked completely but not yet written anywhere."""

    definition: dict[str, Any]
    artifact: bytes | None
    artifact_digest: str | None
    artifact_format: str | None
    signature: str | None
    signer_fingerprint: str | None
    content_digest: str


def _signature_text(signature: str | bytes | None) -> str | None:
    if signature is None:
        return None
    raw = decode_signature(signature)  # UntrustedArtifact unless 64 bytes or their base64
    return encode_signature(raw)


async def prepare_version(
    db: AsyncSession,
    principal: OrgPrincipal,
    model: RegisteredModel,
    *,
    manifest: dict[str, Any],
    artifact: bytes | None,
    signature: str | bytes | None,
    trusted: Sequence[TrustedPublisherKey],
    require_signatures: bool = False,
    allow_pickle: bool = False,
) -> PreparedVersion:
    """Validate a new version completely: its documents, its artifact's format, and any
    signature against the organisation's trusted publisher keys."""
    unstorable = find_unstorable_text(manifest, "manifest")
    if unstorable is not None:
        where, code = unstorable
        raise ValidationFailed(
            f"The manifest holds text that cannot be stored, at {where[:200]}.",
            errors=[{"field": where[:200], "code": code, "message": UNSTORABLE_MESSAGES[code]}],
        )
    schema_document = manifest.get("schema")
    spec_document = manifest.get("spec")
    if not isinstance(schema_document, dict) or not isinstance(spec_document, dict):
        raise ValidationFailed(
            "The manifest needs a 'schema' object and a 'spec' object.",
            errors=[
                {
                    "field": "manifest",
                    "code": "missing_sections",
                    "message": "needs 'schema' and 'spec'",
                }
            ],
        )
    records = manifest.get("records") or {}
    pii_mode = records.get("pii", "encrypt") if isinstance(records, dict) else None
    if pii_mode not in PII_MODES:
        raise ValidationFailed(
            "records.pii must be 'encrypt' or 'drop'.",
            errors=[
                {"field": "manifest.records.pii", "code": "invalid", "message": "encrypt|drop"}
            ],
        )
    compile_schema(schema_document)  # raises InvalidModelDefinition naming each problem
    spec = parse_model_spec(spec_document)
    if spec.kind != model.kind:
        raise ValidationFailed(
            f"Model '{model.name}' is of kind {model.kind}, not {spec.kind}.",
            errors=[{"field": "spec.kind", "code": "kind_mismatch", "message": "kind mismatch"}],
        )
    artifact_digest = artifact_format = signer = None
    if isinstance(spec, MLModelSpec):
        if artifact is None:
            raise ValidationFailed(
                "An ml model version needs its artifact file.",
                errors=[{"field": "artifact", "code": "missing", "message": "required"}],
            )
        checked = check_artifact_format(spec.format, artifact)
        artifact_format = checked.value
        artifact_digest = await anyio.to_thread.run_sync(sha256_digest, artifact)
        if signature is not None:
            signer = verify_signature(artifact_digest, signature, trusted).key_id
        elif require_signatures:
            raise UntrustedArtifact(
                "This installation requires every artifact to be signed by a trusted "
                "publisher key; send the detached signature with the artifact."
            )
        if checked is ArtifactFormat.PICKLE and not (allow_pickle and signer is not None):
            raise UntrustedArtifact(PICKLE_REFUSED)
    elif artifact is not None or signature is not None:
        raise ValidationFailed(
            f"A {spec.kind} model takes no artifact file or signature.",
            errors=[{"field": "artifact", "code": "unexpected", "message": "not allowed"}],
        )
    definition: dict[str, Any] = {
        "schema": schema_document,
        "spec": spec_document,
        "records": {"pii": pii_mode},
    }
    if spec.kind == "ensemble":
        definition["pinned_components"] = await _pin_components(db, principal, spec_document)
    return PreparedVersion(
        definition=definition,
        artifact=artifact,
        artifact_digest=artifact_digest,
        artifact_format=artifact_format,
        signature=_signature_text(signature),
        signer_fingerprint=signer,
        content_digest=content_digest(definition, artifact_digest),
    )


async def find_identical(
    db: AsyncSession, principal: OrgPrincipal, model: RegisteredModel, prepared: PreparedVersion
) -> ModelVersion | None:
    """The model's newest version with exactly this content, if there is one."""
    rows = await db.execute(
        scoped(principal, ModelVersion)
        .where(
            ModelVersion.model_id == model.id,
            ModelVersion.content_digest == prepared.content_digest,
        )
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def create_version(
    db: AsyncSession,
    store: ArtifactStore,
    meta: RequestMeta,
    principal: OrgPrincipal,
    model: RegisteredModel,
    prepared: PreparedVersion,
) -> ModelVersion:
    """Store the artifact content-addressed, pin its digest, and add the version row."""
    if prepared.artifact is not None:
        stored = await anyio.to_thread.run_sync(store.put, prepared.artifact)
        if stored != prepared.artifact_digest:
            raise ArtifactIntegrityError("The artifact changed while it was being stored.")
    latest = await db.execute(
        scope_statement(
            principal,
            select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id),
            ModelVersion,
        )
    )
    number = int(latest.scalar_one() or 0) + 1
    version = ModelVersion(
        org_id=principal.org_id,
        model_id=model.id,
        version=number,
        definition=prepared.definition,
        artifact_digest=prepared.artifact_digest,
        artifact_size=len(prepared.artifact) if prepared.artifact is not None else None,
        artifact_format=prepared.artifact_format,
        signature=prepared.signature,
        signer_fingerprint=prepared.signer_fingerprint,
        content_digest=prepared.content_digest,
        status="healthy",
        created_by=principal.actor_id,
    )
    db.add(version)
    await db.flush()
    record_event(
        db,
        meta,
        action="model.version_created",
        actor=principal,
        target_kind="model_version",
        target_id=version.id,
        details={
            "model": model.name,
            "version": number,
            "digest": prepared.artifact_digest,
            "signed_by": prepared.signer_fingerprint,
        },
    )
    return version


async def set_alias(
    db: AsyncSession,
    meta: RequestMeta,
    principal: OrgPrincipal,
    model: RegisteredModel,
    alias: str,
    version_number: int,
) -> ModelAlias:
    check_alias(alias)
    target = await resolve_version(db, principal, model, VersionRef(version=version_number))
    current = (
        await db.execute(
            scoped(principal, ModelAlias).where(
                ModelAlias.model_id == model.id, ModelAlias.alias == alias
            )
        )
    ).scalar_one_or_none()
    before: int | None = None
    if current is None:
        current = ModelAlias(
            org_id=principal.org_id,
            model_id=model.id,
            alias=alias,
            version_id=target.id,
            updated_by=principal.actor_id,
        )
        db.add(current)
    else:
        previous = (
            await db.execute(
                scoped(principal, ModelVersion).where(ModelVersion.id == current.version_id)
            )
        ).scalar_one_or_none()
        before = previous.version if previous else None
        current.version_id = target.id
        current.updated_by = principal.actor_id
        current.updated_at = datetime.now(UTC)
    await db.flush()
    record_event(
        db,
        meta,
        action="model.alias_moved",
        actor=principal,
        target_kind="model",
        target_id=model.id,
        details={"model": model.name, "alias": alias, "before": before, "after": version_number},
    )
    return current


async def delete_model(
    db: AsyncSession, meta: RequestMeta, principal: OrgPrincipal, model: RegisteredModel
) -> None:
    model.deleted_at = datetime.now(UTC)
    record_event(
        db,
        meta,
        action="model.deleted",
        actor=principal,
        target_kind="model",
        target_id=model.id,
        details={"name": model.name},
    )
