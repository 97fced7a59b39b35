"""`assay demo`: a demo organisation, an administrator, the startup pack and a key.

For newcomers on a development machine: everything needed to score a startup with one
curl command. Refused in production.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import secrets
import shutil
import string
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay import __version__
from assay.accounts import service as accounts
from assay.api_keys import service as api_keys
from assay.audit.service import CLI
from assay.auth.credentials.users import find_user_by_email
from assay.auth.deps import IdentityContext
from assay.cli_support import EXIT_CONFIG_PROBLEM, DependencyUnreachableError
from assay.core.cache import create_cache
from assay.core.db import Database
from assay.core.errors import AssayError
from assay.core.migrations import prepare_database
from assay.core.permissions import BUILTIN_ROLES, OWNER_ROLE, Permission
from assay.core.principal import PLATFORM, OrgPrincipal, platform_in
from assay.core.secrets_store import with_generated_secrets
from assay.engine.pack import load_pack
from assay.orgs import service as orgs
from assay.orgs.models import Organisation
from assay.providers.service import BUILTIN_NAMES, ProviderRegistry, builtin_definition
from assay.registry.service import ModelRegistry
from assay.settings import Settings, load_settings
from assay.targets.client import TargetClient
from assay.targets.schemas import TargetSave
from assay.targets.service import TargetRegistry

DEMO_ORG = "demo"
DEMO_EMAIL = "admin@demo.assay.local"
SAMPLE = "profiles/series_a.json"
_PACK_IN_CHECKOUT = ("examples", "startup_success")
_PACKAGE_DIR = Path(__file__).resolve().parent


def find_default_pack(parts: tuple[str, ...] = _PACK_IN_CHECKOUT) -> Path:
    """The startup-success pack (or the pack at `parts`) of the source checkout Assay
    runs from, wherever the command is started; else the one installed with Assay; else
    ``examples/startup_success`` under the current directory."""
    checkout = _PACKAGE_DIR.parents[1].joinpath(*parts)
    # In an installed wheel the pack is package data (pyproject.toml, [tool.hatch.build]).
    installed = _PACKAGE_DIR.joinpath(*parts)
    for candidate in (checkout, installed):
        if (candidate / "manifest.yaml").is_file():
            return candidate
    return Path.cwd().joinpath(*parts)


DEFAULT_PACK = find_default_pack()
# The threat-intelligence pack: a rules model only, nothing to train.
THREAT_PACK = find_default_pack(("examples", "threat_intel"))
# What the demo organisation's providers send: `assay serve --demo` points them at the
# mock providers, which take any key but their documented rejected one.
DEMO_PROVIDER_KEY = "demo-key-for-the-mock-providers"
# The red-team pack (detectors as rules models, probe sets) and the mock target's key.
REDTEAM_PACK = find_default_pack(("examples", "redteam"))
DEMO_TARGET_KEY = "demo-key-for-the-mock-target"


@dataclass(frozen=True)
class DemoCredentials:
    email: str
    password: str | None
    api_key: str
    sample: dict[str, object]


class DemoUnavailable(DependencyUnreachableError):
    """The demo cannot be prepared (no pack, not trainable, or the pack does not register);
    `assay serve --demo` reports it as one line, like any other start-up problem."""


def _missing_artifacts(pack: Path) -> list[Path]:
    return [
        model.artifact_path
        for model in load_pack(pack).models
        if model.artifact_path is not None and not model.artifact_path.is_file()
    ]


def ensure_trained(pack: Path) -> None:
    """Train the pack's ML artifacts when any is missing (a few seconds).

    Raises `DemoUnavailable` when the pack or its training script cannot be found, or
    the script needs a library that is not installed.
    """
    if not (pack / "manifest.yaml").is_file():
        msg = f"no model pack at {pack}; pass --pack with the directory of one"
        raise DemoUnavailable(msg)
    if not _missing_artifacts(pack):
        return
    script = pack / "train.py"
    spec = importlib.util.spec_from_file_location("startup_success_train", script)
    if not script.is_file() or spec is None or spec.loader is None:
        msg = f"{pack} is not trained and has no train.py to train it"
        raise DemoUnavailable(msg)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        msg = f"{script} needs the module {exc.name!r}, which is not installed"
        raise DemoUnavailable(msg) from None
    module.train_pack(pack)


def prepare_pack(pack: Path, settings: Settings) -> Path:
    """The directory of `pack` to import, trained: `pack` itself (trained in place when
    needed), except for the pack installed with Assay, which is never written to: it is
    copied into the data directory and trained there."""
    if pack.resolve().is_relative_to(_PACKAGE_DIR):
        copy = settings.data_dir / "demo" / f"{pack.name}-{__version__}"
        try:
            # Each run refreshes the pack's files and keeps what an earlier run trained.
            shutil.copytree(
                pack,
                copy,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("build", "__pycache__"),
            )
        except OSError as exc:
            msg = f"cannot copy the demo pack into {copy}: {exc.strerror or exc}"
            raise DemoUnavailable(msg) from None
        pack = copy
    ensure_trained(pack)
    return pack


def _password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(24))


async def create_demo(
    settings: Settings, pack: Path, *, mock_target_url: str | None = None
) -> DemoCredentials:
    database = Database(settings)
    cache = create_cache(settings)
    identity = IdentityContext.build(settings, database, cache)
    try:
        await prepare_database(database.engine, settings)
        await identity.keeper.load()
        async with database.sessionmaker() as db:
            password: str | None = None
            org = (
                await db.execute(select(Organisation).where(Organisation.slug == DEMO_ORG))
            ).scalar_one_or_none()
            if org is None:
                org = await orgs.create_organisation(db, CLI, PLATFORM, name="Demo", slug=DEMO_ORG)
            user = await find_user_by_email(db, DEMO_EMAIL)
            if user is None:
                password = _password()
                user = await accounts.create_user(
                    db,
                    identity,
                    email=DEMO_EMAIL,
                    password=password,
                    display_name="Demo administrator",
                    must_change_password=True,
                    check_policy=False,
                )
                await orgs.add_member(db, CLI, PLATFORM, org.id, user, "owner")
            registry = ModelRegistry.build(settings, database.sessionmaker)
            # Idempotent: a second demo run keeps the versions the first registered.
            try:
                await registry.import_pack(db, CLI, platform_in(org.id), pack)
            except AssayError as exc:
                problems = "; ".join(
                    f"{e.get('path') or e.get('field') or ''} {e.get('message')}".strip()
                    for e in (exc.errors or [])[:5]
                )
                msg = f"the demo pack does not register: {exc.detail}" + (
                    f" ({problems})" if problems else ""
                )
                raise DemoUnavailable(msg) from None
            await _threat_intel(db, settings, identity, org.id)
            await _red_team(db, settings, identity, org.id, mock_target_url)
            # Keys are made by a user, with no more than that user's permissions: the
            # demo administrator (an owner of the demo organisation) makes this one.
            administrator = OrgPrincipal(
                kind="user",
                id=user.id,
                org_id=org.id,
                permissions=BUILTIN_ROLES[OWNER_ROLE],
                auth_method="cli",
            )
            created = await api_keys.create_api_key(
                db,
                identity,
                CLI,
                administrator,
                name="demo scoring key",
                scopes=[
                    Permission.PREDICT,
                    Permission.MODELS_READ,
                    Permission.JOBS_READ,
                    Permission.JOBS_WRITE,
                    Permission.LOOKUPS_RUN,
                    Permission.LOOKUPS_READ,
                    Permission.SCANS_RUN,
                    Permission.SCANS_READ,
                ],
                expires_at=None,
                allowed_cidrs=[],
                signing_required=False,
            )
            await db.commit()
    finally:
        await cache.close()
        await database.dispose()
    sample = json.loads((pack / SAMPLE).read_text(encoding="utf-8"))
    return DemoCredentials(DEMO_EMAIL, password, created.plaintext, sample)


async def _threat_intel(
    db: AsyncSession, settings: Settings, identity: IdentityContext, org_id: uuid.UUID
) -> None:
    """The threat-intelligence pack and the three shipped providers, with the demo key;
    an organisation's own definitions and keys, once changed, are left as they are."""
    principal = platform_in(org_id)
    registry = ModelRegistry.build(settings, identity.database.sessionmaker)
    try:
        await registry.import_pack(db, CLI, principal, THREAT_PACK)
    except AssayError as exc:
        msg = f"the threat-intelligence pack does not register: {exc.detail}"
        raise DemoUnavailable(msg) from None
    providers = ProviderRegistry.for_registration(settings, identity.keyring)
    existing = {o.row.name for o in await providers.overview(db, principal)}
    for name in BUILTIN_NAMES:
        if name in existing:
            continue
        await providers.save(db, principal, name, builtin_definition(name), meta=CLI)
        await providers.set_credential(db, principal, name, DEMO_PROVIDER_KEY, meta=CLI)


async def _red_team(
    db: AsyncSession,
    settings: Settings,
    identity: IdentityContext,
    org_id: uuid.UUID,
    mock_target_url: str | None,
) -> None:
    """The red-team pack's detectors and, with the mock target running (`serve --demo`),
    its vulnerable and refusing models as the targets demo-vulnerable and demo-refusing
    (their URL follows the mock's port at every start)."""
    principal = platform_in(org_id)
    registry = ModelRegistry.build(settings, identity.database.sessionmaker)
    try:
        await registry.import_pack(db, CLI, principal, REDTEAM_PACK)
    except AssayError as exc:
        msg = f"the red-team pack does not register: {exc.detail}"
        raise DemoUnavailable(msg) from None
    if mock_target_url is None:
        return
    targets = TargetRegistry(identity.keyring, TargetClient.for_registration(settings))
    for mode in ("vulnerable", "refusing"):
        body = TargetSave(
            kind="openai_chat",
            url=f"{mock_target_url}/{mode}/v1/chat/completions",
            description=f"The FAKE {mode} model of `assay mock-target`, for the demo.",
            model="mock-chat-1",
            system_prompt="You are the support assistant of the Demo organisation.",
            requests_per_minute=600,
        )
        await targets.save(db, principal, f"demo-{mode}", body, meta=CLI)
        await targets.set_credential(db, principal, f"demo-{mode}", DEMO_TARGET_KEY, meta=CLI)


def print_demo(credentials: DemoCredentials, settings: Settings) -> None:
    base = f"http://{settings.host}:{settings.port}"
    typer.echo("\nDemo ready.")
    if settings.console_enabled:
        typer.echo(f"  web console: {base}/console/ (sign in with the administrator below)")
    typer.echo(f"  organisation: {DEMO_ORG}")
    if credentials.password:
        typer.echo(f"  administrator: {credentials.email}")
        typer.echo(f"  one-time password (change it at first sign-in): {credentials.password}")
    else:
        typer.echo(f"  administrator: {credentials.email} (already created earlier)")
    typer.echo(f"  API key (shown once): {credentials.api_key}")
    body = json.dumps({"record": credentials.sample})
    typer.echo("\nScore a Series A startup:\n")
    typer.echo(
        f"curl -s {base}/v1/models/startup-success/predict \\\n"
        f"  -H 'x-api-key: {credentials.api_key}' -H 'content-type: application/json' \\\n"
        f"  -d '{body}'\n"
    )
    typer.echo("Look an indicator up across VirusTotal, AbuseIPDB and URLhaus")
    typer.echo("(`assay serve --demo` answers them from the offline mock providers):\n")
    typer.echo(
        f"curl -s {base}/v1/lookups \\\n"
        f"  -H 'x-api-key: {credentials.api_key}' -H 'content-type: application/json' \\\n"
        """  -d '{"indicator": "185.220.101[.]34"}'\n"""
    )
    typer.echo("Scan the FAKE vulnerable AI model for prompt injection and leaks:\n")
    typer.echo(
        f"curl -s {base}/v1/scans \\\n"
        f"  -H 'x-api-key: {credentials.api_key}' -H 'content-type: application/json' \\\n"
        """  -d '{"target": "demo-vulnerable", "transforms": ["base64"]}'\n"""
    )


def demo(
    pack: Annotated[Path, typer.Option(help="The model pack to import.")] = DEFAULT_PACK,
) -> None:
    """Create a demo organisation, an administrator, the startup pack and an API key."""
    settings = with_generated_secrets(load_settings())
    if settings.is_production:
        typer.echo("Error: the demo is for development machines, not production.", err=True)
        raise typer.Exit(EXIT_CONFIG_PROBLEM)
    try:
        credentials = asyncio.run(create_demo(settings, prepare_pack(pack, settings)))
    except DemoUnavailable as exc:
        typer.echo(f"Error: {exc}.", err=True)
        raise typer.Exit(EXIT_CONFIG_PROBLEM) from None
    print_demo(credentials, settings)
