"""Registering a whole model pack (a directory with a manifest) through the registry.

Every model goes through the same `register_version` as an upload through the API
(signature checked, artifact stored and pinned, version loaded), and each alias moves
only after its version loaded. Every file the pack names is read before anything is
written, so a pack that is incomplete (not trained yet, say) registers nothing. Importing
the same pack again is idempotent: a model whose content has not changed keeps its
version, and aliases that already point there do not move.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.service import RequestMeta
from assay.core.errors import NotFound
from assay.core.principal import OrgPrincipal
from assay.engine.definition_errors import DefinitionProblems, join_path
from assay.engine.errors import InvalidModelDefinition
from assay.engine.pack import Pack, PackModel, load_pack
from assay.registry import repository as registry
from assay.registry import service
from assay.registry.artifact_store import ArtifactStore
from assay.registry.model_cache import ModelCache
from assay.settings import Settings

TRAINING_SCRIPT = "train.py"


@dataclass(frozen=True, slots=True)
class ImportedModel:
    name: str
    kind: str
    version: int
    aliases: tuple[str, ...]
    artifact_digest: str | None
    created: bool = True


@dataclass(frozen=True, slots=True)
class _Files:
    artifact: bytes | None
    signature: bytes | None


def manifest_of(model: PackModel) -> dict[str, object]:
    """The registry manifest (schema, spec and records documents) of one pack model."""
    return {
        "schema": model.schema.definition.model_dump(mode="json", exclude_none=True),
        "spec": model.spec.model_dump(mode="json", exclude_none=True),
        "records": {"pii": model.pii},
    }


def read_pack_files(pack: Pack) -> dict[str, _Files]:
    """Every artifact and signature of the pack, or one error naming each missing file."""
    problems = DefinitionProblems("pack manifest")
    files: dict[str, _Files] = {}
    for index, model in enumerate(pack.models):
        read: dict[str, bytes | None] = {}
        for part, path in (("artifact", model.artifact_path), ("signature", model.signature_path)):
            if path is None:
                read[part] = None
                continue
            try:
                read[part] = path.read_bytes()
            except OSError as exc:
                shown = (
                    path.relative_to(pack.directory)
                    if path.is_relative_to(pack.directory)
                    else path
                )
                why = "does not exist" if isinstance(exc, FileNotFoundError) else "cannot be read"
                problems.add(join_path("models", index, part), f"{shown} {why}", model.name)
        files[model.name] = _Files(read.get("artifact"), read.get("signature"))
    if problems:
        script = pack.directory / TRAINING_SCRIPT
        hint = (
            f" This pack's artifacts are produced by its training script: run "
            f"`python {script}` first."
            if script.is_file()
            else ""
        )
        error = problems.error()
        raise InvalidModelDefinition(
            f"The pack '{pack.name}' is incomplete; nothing was imported.{hint}",
            errors=error.errors,
        )
    return files


async def import_pack(
    db: AsyncSession,
    store: ArtifactStore,
    cache: ModelCache,
    settings: Settings,
    meta: RequestMeta,
    principal: OrgPrincipal,
    directory: Path,
) -> list[ImportedModel]:
    """Register every model of the pack (components first) and move its aliases; in the
    caller's transaction, so a failure part-way registers nothing."""
    pack = load_pack(directory)
    files = read_pack_files(pack)
    imported: list[ImportedModel] = []
    for entry in pack.models:
        try:
            model = await registry.get_model(db, principal, entry.name)
        except NotFound:
            model = await registry.create_model(
                db,
                meta,
                principal,
                name=entry.name,
                kind=entry.spec.kind,
                description=entry.spec.description or "",
            )
        registered = await service.register_version(
            db,
            store,
            cache,
            settings,
            meta,
            principal,
            model,
            manifest=manifest_of(entry),
            artifact=files[entry.name].artifact,
            signature=files[entry.name].signature,
            reuse_identical=True,
        )
        version = registered.version
        current = await registry.aliases_of(db, principal, model)
        for alias in entry.aliases:
            if current.get(alias) != version.version:
                await service.move_alias(
                    db, store, cache, settings, meta, principal, model, alias, version.version
                )
        # Components of later ensembles resolve through these aliases.
        await db.flush()
        imported.append(
            ImportedModel(
                entry.name,
                entry.spec.kind,
                version.version,
                entry.aliases,
                version.artifact_digest,
                registered.created,
            )
        )
    return imported
