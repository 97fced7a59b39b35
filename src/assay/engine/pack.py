"""Model packs: a directory with a ``manifest.yaml`` describing several models at once.

A pack is what ``assay models import <dir>`` reads: one input schema, the models
(each with its kind, spec, aliases and, for `ml`, an artifact file) and the order to
register them in (components before the ensembles that use them). See docs/models.md,
"Packs and the manifest".

Every file a manifest names must be a relative path that stays inside the pack
directory (no absolute paths, no ``..`` escape, no symlink out). Documents are read
through `assay.engine.documents` (no anchors or aliases; bounded size, values and
depth). Artifact bytes are read from the pack and handed to the loaders as bytes, like
any other upload.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assay.engine.bands import BandsDefinition
from assay.engine.build import AnySpec, build_scorer
from assay.engine.definition_errors import DefinitionProblems, join_path
from assay.engine.documents import DocumentRefused, load_document
from assay.engine.ensemble import CeilingSpec, ComponentSpec
from assay.engine.errors import InvalidModelDefinition
from assay.engine.formats import ArtifactFormat
from assay.engine.rules.definition import RulesDefinition
from assay.engine.rules.model import compile_rules
from assay.engine.runtimes import LoadPolicy, OutputSpec
from assay.engine.schema.input_schema import InputSchema, compile_schema
from assay.engine.scorer import Scorer
from assay.engine.spec import MODEL_NAME_PATTERN, EnsembleModelSpec, MLModelSpec, RulesModelSpec
from assay.engine.vectorize import FeatureSpec

MANIFEST_NAME = "manifest.yaml"
PACK_FORMAT = "assay-pack/v1"
MAX_DOCUMENT_BYTES = 1 << 20
ALIAS_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
_DOCUMENT = "pack manifest"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordsSpec(_Strict):
    """How prediction records keep the schema's `pii: true` fields: sealed or not at all."""

    pii: Literal["encrypt", "drop"] = "encrypt"


class CacheSpec(_Strict):
    """How long the prediction cache keeps this model's answers."""

    ttl_seconds: float = Field(gt=0, le=86_400)


class _EntryBase(_Strict):
    name: str = Field(pattern=MODEL_NAME_PATTERN)
    records: RecordsSpec | None = Field(None, description="Overrides the pack's.")
    # `cache: off` opts the model out of the prediction cache (YAML reads `off` as false).
    cache: CacheSpec | Literal["off", False] | None = None
    description: str | None = Field(None, max_length=2000)
    aliases: list[Annotated[str, Field(pattern=ALIAS_PATTERN)]] = Field(
        default_factory=list, max_length=10
    )
    bands: BandsDefinition | None = None
    schema_file: str | None = Field(None, alias="schema", description="Overrides the pack's.")


class MLEntry(_EntryBase):
    kind: Literal["ml"]
    format: ArtifactFormat
    artifact: str
    signature: str | None = None
    features: list[str | FeatureSpec] | None = None
    output: OutputSpec = Field(default_factory=OutputSpec)


class RulesEntry(_EntryBase):
    kind: Literal["rules"]
    rules: str


class EnsembleEntry(_EntryBase):
    kind: Literal["ensemble"]
    components: list[ComponentSpec] = Field(min_length=1, max_length=50)
    ceilings: list[CeilingSpec] = Field(default_factory=list, max_length=50)


PackEntry = Annotated[MLEntry | RulesEntry | EnsembleEntry, Field(discriminator="kind")]


class PackManifest(_Strict):
    format: Literal["assay-pack/v1"]
    name: str = Field(pattern=MODEL_NAME_PATTERN)
    description: str | None = Field(None, max_length=2000)
    schema_file: str = Field(alias="schema")
    records: RecordsSpec = Field(default_factory=RecordsSpec)
    models: list[PackEntry] = Field(min_length=1, max_length=100)


@dataclass(frozen=True, slots=True)
class PackModel:
    """One model of a pack, ready for a registry: spec, schema, files and aliases."""

    name: str
    spec: AnySpec
    schema: InputSchema
    aliases: tuple[str, ...]
    artifact_path: Path | None = None
    signature_path: Path | None = None
    components: tuple[str, ...] = ()
    pii: str = "encrypt"
    # The registry manifest's `cache` entry: "off", {"ttl_seconds": N}, or None (default).
    cache: str | dict[str, float] | None = None

    def read_artifact(self) -> bytes | None:
        return None if self.artifact_path is None else self.artifact_path.read_bytes()

    def read_signature(self) -> bytes | None:
        return None if self.signature_path is None else self.signature_path.read_bytes()


@dataclass(frozen=True, slots=True)
class Pack:
    """A checked pack; `models` are in registration order (components first)."""

    name: str
    description: str | None
    directory: Path
    models: tuple[PackModel, ...]

    def model(self, name: str) -> PackModel:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)


def _inside(directory: Path, relative: str, problems: DefinitionProblems, path: str) -> Path | None:
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts:
        problems.add(path, "must be a relative path inside the pack")
        return None
    resolved = (directory / candidate).resolve()
    if not resolved.is_relative_to(directory):
        problems.add(path, "leads outside the pack (through a symlink)")
        return None
    return resolved


def _read_yaml(file: Path, problems: DefinitionProblems, path: str) -> Any:
    try:
        if file.stat().st_size > MAX_DOCUMENT_BYTES:
            problems.add(path, f"{file.name} is larger than {MAX_DOCUMENT_BYTES} bytes")
            return None
        return load_document(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.add(path, f"{file} does not exist")
    except DocumentRefused as exc:
        problems.add(path, f"{file.name} cannot be read: {exc}")
    except (OSError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0][:200]
        problems.add(path, f"{file.name} cannot be read: {reason}")
    return None


def load_pack(directory: Path) -> Pack:
    """Read and check a pack's manifest, schema and rules (artifacts are not read yet)."""
    root = Path(directory).resolve()
    problems = DefinitionProblems(_DOCUMENT)
    raw = _read_yaml(root / MANIFEST_NAME, problems, MANIFEST_NAME)
    problems.raise_if_any()
    try:
        manifest = PackManifest.model_validate(raw)
    except ValidationError as exc:
        problems.add_pydantic(exc, raw)
        raise problems.error() from None

    schemas: dict[str, InputSchema] = {}

    def schema_for(relative: str, path: str) -> InputSchema | None:
        if relative not in schemas:
            file = _inside(root, relative, problems, path)
            document = _read_yaml(file, problems, path) if file else None
            if document is None:
                return None
            schemas[relative] = compile_schema(document)
        return schemas[relative]

    models: list[PackModel] = []
    for i, entry in enumerate(manifest.models):
        path = join_path("models", i)
        schema = schema_for(entry.schema_file or manifest.schema_file, join_path(path, "schema"))
        if schema is None:
            continue
        model = _pack_model(entry, schema, root, problems, path)
        if model is not None:
            records = entry.records or manifest.records
            cache = entry.cache
            policy = cache.model_dump() if isinstance(cache, CacheSpec) else cache
            models.append(
                dataclasses.replace(
                    model, pii=records.pii, cache="off" if policy is False else policy
                )
            )
    problems.raise_if_any()
    ordered = _registration_order(models, problems)
    problems.raise_if_any()
    return Pack(manifest.name, manifest.description, root, tuple(ordered))


def _pack_model(
    entry: MLEntry | RulesEntry | EnsembleEntry,
    schema: InputSchema,
    root: Path,
    problems: DefinitionProblems,
    path: str,
) -> PackModel | None:
    common = {"description": entry.description, "bands": entry.bands}
    aliases = tuple(entry.aliases)
    if isinstance(entry, MLEntry):
        artifact = _inside(root, entry.artifact, problems, join_path(path, "artifact"))
        signature = (
            _inside(root, entry.signature, problems, join_path(path, "signature"))
            if entry.signature
            else None
        )
        ml = MLModelSpec(
            kind="ml", format=entry.format, features=entry.features, output=entry.output, **common
        )
        return PackModel(entry.name, ml, schema, aliases, artifact, signature)
    if isinstance(entry, RulesEntry):
        file = _inside(root, entry.rules, problems, join_path(path, "rules"))
        document = _read_yaml(file, problems, join_path(path, "rules")) if file else None
        if document is None:
            return None
        try:
            rules = RulesDefinition.model_validate(document)
            # Compiled here only to report problems before anything is registered.
            compile_rules(rules, schema)
        except ValidationError as exc:
            inner = DefinitionProblems(entry.rules)
            inner.add_pydantic(exc, document)
            _add_from_file(problems, entry.rules, inner.error())
            return None
        except InvalidModelDefinition as exc:
            _add_from_file(problems, entry.rules, exc)
            return None
        spec = RulesModelSpec(kind="rules", rules=rules, **common)
        return PackModel(entry.name, spec, schema, aliases)
    ensemble = EnsembleModelSpec(
        kind="ensemble", components=entry.components, ceilings=entry.ceilings, **common
    )
    names = tuple(c.model for c in entry.components)
    return PackModel(entry.name, ensemble, schema, aliases, components=names)


def _add_from_file(problems: DefinitionProblems, file: str, exc: InvalidModelDefinition) -> None:
    for error in exc.errors or ():
        name = error.get("name")
        where = f"{file}: {error.get('path', '')}"
        problems.add(where, str(error.get("message", "")), name if isinstance(name, str) else None)


def _registration_order(
    models: Sequence[PackModel], problems: DefinitionProblems
) -> list[PackModel]:
    by_name: dict[str, PackModel] = {}
    for model in models:
        if model.name in by_name:
            problems.add("models", "two models share a name", model.name)
        by_name[model.name] = model
    ordered: list[PackModel] = []
    state: dict[str, str] = {}

    def visit(model: PackModel) -> None:
        if state.get(model.name) == "done":
            return
        if state.get(model.name) == "visiting":
            problems.add("models", "ensembles refer to each other in a cycle", model.name)
            return
        state[model.name] = "visiting"
        for component in model.components:
            if component not in by_name:
                problems.add("models", f"component {component!r} is not in the pack", model.name)
            else:
                visit(by_name[component])
        state[model.name] = "done"
        ordered.append(model)

    for model in models:
        visit(model)
    return ordered


def build_pack_scorers(pack: Pack, *, policy: LoadPolicy | None = None) -> dict[str, Scorer]:
    """Load every model of the pack (components first) into scorers, by name."""
    scorers: dict[str, Scorer] = {}
    for model in pack.models:
        components: Mapping[str, Scorer] = {name: scorers[name] for name in model.components}
        scorers[model.name] = build_scorer(
            model.spec,
            model.schema,
            artifact=model.read_artifact(),
            signature=model.read_signature(),
            components=components,
            policy=policy or LoadPolicy(),
            name=model.name,
        )
    return scorers
