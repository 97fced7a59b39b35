"""Reading a model pack (a directory with a manifest) for `ModelRegistry.import_pack`.

Every model of a pack goes through the same registration as an upload through the API
(signature checked, artifact stored and pinned, version loaded), and each alias moves
only after its version loaded. Every file the pack names is read here, before anything
is written, so a pack that is incomplete (not trained yet, say) registers nothing.
Importing the same pack again is idempotent: a model whose content has not changed
keeps its version, and aliases that already point there do not move.
"""

from __future__ import annotations

from dataclasses import dataclass

from assay.engine.definition_errors import DefinitionProblems, join_path
from assay.engine.errors import InvalidModelDefinition
from assay.engine.pack import Pack, PackModel

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
    manifest: dict[str, object] = {
        "schema": model.schema.definition.model_dump(mode="json", exclude_none=True),
        "spec": model.spec.model_dump(mode="json", exclude_none=True),
        "records": {"pii": model.pii},
    }
    if model.cache is not None:
        manifest["cache"] = model.cache
    return manifest


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
