"""A new version's documents: the uploaded manifest parsed, and the version checked
completely (names, documents, artifact format, signature, pinned ensemble components)
before anything is written."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from assay.core.errors import NotFound, ValidationFailed
from assay.core.principal import OrgPrincipal
from assay.core.schemas import UNSTORABLE_MESSAGES, find_unstorable_text
from assay.engine.documents import DocumentRefused, load_document
from assay.engine.errors import UntrustedArtifact
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
from assay.registry import repository
from assay.registry.models import RegisteredModel
from assay.registry.schemas import VersionRef

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_ALIAS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PII_MODES = ("encrypt", "drop")
# A model's own prediction-cache policy: at most a day, as the global setting.
MAX_CACHE_TTL_SECONDS = 86_400
_CACHE_POLICY_MESSAGE = "cache must be 'off' or {ttl_seconds: N} with 0 < N <= 86400."


def check_model_name(name: str) -> None:
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


def parse_manifest(text: str) -> dict[str, Any]:
    """The uploaded manifest (YAML or JSON) as a mapping, or `ValidationFailed` naming
    why it cannot be read (too large, anchors and aliases, too many values, too deep).
    Linear in the size of `text`; callers on the event loop run it in a thread."""
    try:
        document = load_document(text)
    except DocumentRefused as exc:
        raise ValidationFailed(
            f"The manifest cannot be read: {exc}.",
            errors=[{"field": "manifest", "code": exc.code, "message": str(exc)}],
        ) from None
    if not isinstance(document, dict):
        raise ValidationFailed(
            "The manifest must be a mapping with 'schema' and 'spec'.",
            errors=[{"field": "manifest", "code": "not_a_mapping", "message": "not a mapping"}],
        )
    return document


def parse_cache_policy(value: object) -> dict[str, Any] | str:
    """A manifest's `cache` entry in its stored form: "off", or {"ttl_seconds": N}.

    YAML reads a bare `off` as false, so both spellings mean off."""
    if value is False or value == "off":
        return "off"
    if isinstance(value, dict) and set(value) == {"ttl_seconds"}:
        ttl = value["ttl_seconds"]
        valid = isinstance(ttl, int | float) and not isinstance(ttl, bool)
        if valid and 0 < ttl <= MAX_CACHE_TTL_SECONDS:
            return {"ttl_seconds": ttl}
    raise ValidationFailed(
        _CACHE_POLICY_MESSAGE,
        errors=[{"field": "manifest.cache", "code": "invalid", "message": "off|{ttl_seconds}"}],
    )


def content_digest(definition: dict[str, Any], artifact_digest: str | None) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{canonical}\n{artifact_digest or ''}".encode()).hexdigest()


async def _pin_components(
    db: AsyncSession, principal: OrgPrincipal, spec_document: dict[str, Any]
) -> dict[str, int]:
    """Ensembles name their components; the version pins exactly which ones."""
    pins: dict[str, int] = {}
    for index, component in enumerate(spec_document.get("components", [])):
        name = component.get("model")
        try:
            model = await repository.get_model(db, principal, str(name))
            ref = VersionRef.parse(component.get("alias"), component.get("version"))
            version = await repository.resolve_version(db, principal, model, ref)
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
    cache_policy = parse_cache_policy(manifest["cache"]) if "cache" in manifest else None
    # Raises InvalidModelDefinition naming each problem; compiling CEL takes milliseconds.
    await anyio.to_thread.run_sync(compile_schema, schema_document)
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
    if cache_policy is not None:
        # Only when the manifest sets one, so versions without it keep their digests.
        definition["cache"] = cache_policy
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
