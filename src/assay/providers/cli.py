"""`assay providers`: register an organisation's providers and set their credentials."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.service import CLI
from assay.auth.deps import IdentityContext
from assay.cli_support import EXIT_CONFIG_PROBLEM, run_with_identity
from assay.core.principal import platform_in
from assay.engine.documents import DocumentRefused, load_document
from assay.orgs.service import find_organisation
from assay.providers.service import BUILTIN_NAMES, ProviderRegistry, builtin_definition

providers_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Evidence providers of an organisation (docs/threat-intel.md).",
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_CONFIG_PROBLEM)


def _registry(identity: IdentityContext) -> ProviderRegistry:
    return ProviderRegistry.for_registration(identity.settings, identity.keyring)


def _documents(files: list[Path], builtin: list[str]) -> list[dict[str, object]]:
    documents: list[dict[str, object]] = []
    for name in builtin:
        if name not in BUILTIN_NAMES:
            _fail(f"no built-in provider {name!r}; there are {', '.join(BUILTIN_NAMES)}")
        documents.append(builtin_definition(name))
    for path in files:
        try:
            document = load_document(path.read_text(encoding="utf-8"))
        except OSError as exc:
            _fail(f"{path}: {exc.strerror or type(exc).__name__}")
        except DocumentRefused as exc:
            _fail(f"{path}: {exc}")
        if not isinstance(document, dict) or not isinstance(document.get("name"), str):
            _fail(f"{path}: a provider definition is a mapping with a name")
        documents.append(document)
    if not documents:
        _fail("name a definition file or --builtin providers")
    return documents


@providers_app.command("import")
def import_command(
    org: Annotated[str, typer.Option(help="Slug of the organisation.")],
    files: Annotated[
        list[Path] | None, typer.Argument(help="assay-provider/v1 documents (YAML or JSON).")
    ] = None,
    builtin: Annotated[
        list[str] | None,
        typer.Option(help=f"A definition shipped with Assay: {', '.join(BUILTIN_NAMES)}."),
    ] = None,
) -> None:
    """Register providers (or replace their definitions; credentials are kept). All or
    nothing: one invalid document registers none."""
    documents = _documents(files or [], builtin or [])

    async def action(db: AsyncSession, identity: IdentityContext) -> list[str]:
        principal = platform_in((await find_organisation(db, org)).id)
        registry = _registry(identity)
        names = []
        for document in documents:
            name = str(document["name"])
            await registry.save(db, principal, name, document, meta=CLI)
            names.append(name)
        return names

    for name in run_with_identity(action):
        typer.echo(f"{name}: registered")


@providers_app.command("credential")
def credential_command(
    org: Annotated[str, typer.Option(help="Slug of the organisation.")],
    name: Annotated[str, typer.Argument(help="The provider.")],
    from_env: Annotated[
        str | None,
        typer.Option(help="Read the key from this environment variable instead of a prompt."),
    ] = None,
) -> None:
    """Set a provider's API key (sealed; never shown again). Never pass it as an
    argument: it would stay in the shell's history."""
    if from_env is not None:
        secret = os.environ.get(from_env, "")
        if not secret:
            _fail(f"the environment variable {from_env} is empty or not set")
    else:
        secret = typer.prompt(f"API key for {name}", hide_input=True)

    async def action(db: AsyncSession, identity: IdentityContext) -> None:
        principal = platform_in((await find_organisation(db, org)).id)
        await _registry(identity).set_credential(db, principal, name, secret, meta=CLI)

    run_with_identity(action)
    typer.echo(f"{name}: credential set")
