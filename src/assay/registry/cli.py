"""`assay models` and `assay keys`: packs, signing, verification, trusted publishers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.service import CLI
from assay.auth.deps import IdentityContext
from assay.cli_support import EXIT_CONFIG_PROBLEM, run_with_identity
from assay.core.errors import NotFound
from assay.core.principal import PLATFORM, platform_in
from assay.engine.integrity import (
    encode_signature,
    generate_publisher_key,
    public_key_base64,
    sign_artifact,
)
from assay.orgs.models import Organisation
from assay.registry.health import Changed
from assay.registry.models import PublisherKey
from assay.registry.packs import ImportedModel
from assay.registry.service import ModelRegistry
from assay.registry.versions import ArtifactCheck

models_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Import, sign and verify models."
)
keys_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Trusted publisher keys of an organisation."
)


async def _org(db: AsyncSession, slug: str) -> Organisation:
    org = (
        await db.execute(select(Organisation).where(Organisation.slug == slug))
    ).scalar_one_or_none()
    if org is None or org.deleted_at is not None:
        raise NotFound(f"No organisation '{slug}'.")
    return org


def _registry_of(identity: IdentityContext) -> ModelRegistry:
    return ModelRegistry.build(identity.settings, identity.database.sessionmaker)


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_CONFIG_PROBLEM)


def _file_problem(path: Path, exc: OSError) -> str:
    return f"{path}: {exc.strerror or type(exc).__name__}"


@models_app.command("import")
def import_command(
    directory: Annotated[Path, typer.Argument(help="The pack directory (with manifest.yaml).")],
    org: Annotated[str, typer.Option(help="Slug of the organisation to register into.")],
) -> None:
    """Register every model of a pack and move the pack's aliases (idempotent: unchanged
    models keep their version). Each version is verified and loaded first; a pack that
    cannot be registered completely registers nothing."""

    async def action(db: AsyncSession, identity: IdentityContext) -> list[ImportedModel]:
        organisation = await _org(db, org)
        return await _registry_of(identity).import_pack(
            db, CLI, platform_in(organisation.id), directory
        )

    for model in run_with_identity(action):
        aliases = ", ".join(model.aliases) or "-"
        digest = f" sha256:{model.artifact_digest[:16]}…" if model.artifact_digest else ""
        state = "" if model.created else " (unchanged)"
        typer.echo(
            f"{model.name} v{model.version} ({model.kind}) aliases: {aliases}{digest}{state}"
        )


@models_app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option(help="Where to write the private key (PEM, mode 0600).")],
) -> None:
    """Create an Ed25519 publisher key; prints the public key to trust."""
    key = generate_publisher_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    except FileExistsError:
        _fail(f"{out} exists; a key file is never overwritten.")
    except OSError as exc:
        _fail(_file_problem(out, exc))
    typer.echo(f"Private key written to {out} (keep it secret).")
    typer.echo(f"Public key: {public_key_base64(key.public_key())}")


@models_app.command("sign")
def sign(
    artifact: Annotated[Path, typer.Argument(help="The artifact file to sign.")],
    key: Annotated[Path, typer.Option(help="The publisher's private key (PEM).")],
    out: Annotated[
        Path | None, typer.Option(help="Signature file (default: ARTIFACT.sig).")
    ] = None,
) -> None:
    """Write a detached Ed25519 signature of the artifact's SHA-256."""
    try:
        pem = key.read_bytes()
    except OSError as exc:
        _fail(_file_problem(key, exc))
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        _fail(f"{key} is not an unencrypted PEM private key.")
    if not isinstance(private, Ed25519PrivateKey):
        _fail("publisher keys are Ed25519.")
    try:
        data = artifact.read_bytes()
    except OSError as exc:
        _fail(_file_problem(artifact, exc))
    signature = encode_signature(sign_artifact(data, private))
    target = out or artifact.with_name(artifact.name + ".sig")
    try:
        target.write_text(signature + "\n", encoding="utf-8")
    except OSError as exc:
        _fail(_file_problem(target, exc))
    typer.echo(f"Signature written to {target}.")


@models_app.command("verify")
def verify() -> None:
    """Check every stored artifact now: its SHA-256 against the pinned digest and its
    signature against the organisation's trusted keys. A failing version is marked
    unhealthy; an unhealthy one that passes is marked healthy again (with the ensembles
    that failed only through it). Exits 1 on any failure."""

    async def action(db: AsyncSession, identity: IdentityContext) -> list[ArtifactCheck]:
        return await _registry_of(identity).versions.verify_stored_artifacts(db, CLI, PLATFORM)

    failures = 0
    for check in run_with_identity(action):
        if check.problem is not None:
            failures += 1
            typer.echo(f"FAIL {check.model} v{check.version}: {check.problem}")
            continue
        restored = " (healthy again)" if check.healthy_again else ""
        typer.echo(f"ok   {check.model} v{check.version} sha256:{check.artifact_digest}{restored}")
    if failures:
        typer.echo(f"{failures} artifact(s) failed verification.", err=True)
        raise typer.Exit(1)


@keys_app.command("trust")
def trust(
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    name: Annotated[str, typer.Option(help="Who the key belongs to.")],
    public_key: Annotated[str, typer.Option(help="Base64 of the 32-byte Ed25519 public key.")],
) -> None:
    """Trust a publisher's public key for an organisation (a revoked key may be trusted
    again; its versions recover through `assay models verify`)."""

    async def action(db: AsyncSession, identity: IdentityContext) -> str:
        organisation = await _org(db, org)
        key = await _registry_of(identity).keys.trust_key(
            db, CLI, platform_in(organisation.id), name=name, public_key=public_key
        )
        return key.fingerprint

    typer.echo(f"Trusted {run_with_identity(action)}.")


@keys_app.command("list")
def list_keys(org: Annotated[str, typer.Option(help="Organisation slug.")]) -> None:
    """List the organisation's publisher keys."""

    async def action(db: AsyncSession, identity: IdentityContext) -> list[PublisherKey]:
        organisation = await _org(db, org)
        return await _registry_of(identity).keys.list_keys(db, platform_in(organisation.id))

    for key in run_with_identity(action):
        state = "revoked" if key.revoked_at else "trusted"
        typer.echo(f"{key.fingerprint}  {state:8}  {key.name}")


@keys_app.command("revoke")
def revoke(
    org: Annotated[str, typer.Option(help="Organisation slug.")],
    fingerprint: Annotated[str, typer.Option(help="The key's fingerprint (ed25519:…).")],
) -> None:
    """Stop trusting a publisher key: the versions it signed (and ensembles pinning them)
    are marked unhealthy and stop serving within model_resolution_cache_seconds."""

    async def action(db: AsyncSession, identity: IdentityContext) -> list[Changed]:
        organisation = await _org(db, org)
        return await _registry_of(identity).keys.revoke_key(
            db, CLI, platform_in(organisation.id), fingerprint
        )

    changed = run_with_identity(action)
    typer.echo(f"Revoked {fingerprint}.")
    for item in changed:
        typer.echo(f"  unhealthy now: {item.model}")
