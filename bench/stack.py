"""The system under test: a real `assay serve` process, in production mode, every guard on.

Production mode means: API-key authentication on every request, the trusted-host check,
security headers, CORS, body and JSON limits, rate limits (set high enough not to trip:
the bench measures their cost, not their refusals), request logging at info (JSON, to a
file), prediction records buffered and flushed to the database, and PII fields sealed.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
PACK_DIR = REPO / "examples" / "startup_success"
SERVE = [sys.executable, "-c", "from assay.cli import app; app()"]
BENCH_MODELS = ("startup-success-logreg", "startup-success-lgbm")
# High enough that no level of the bench is refused; the limiter still runs on every request.
UNTRIPPABLE_LIMIT = "100000000/minute"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(
    *, data_dir: Path, database_url: str, port: int, workers: int, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(
        ASSAY_ENV="production",
        ASSAY_DATA_DIR=str(data_dir),
        ASSAY_DATABASE_URL=database_url,
        ASSAY_ALLOW_SQLITE_IN_PRODUCTION="true",
        ASSAY_PUBLIC_URL="https://assay.bench.invalid",
        ASSAY_ALLOWED_HOSTS="127.0.0.1",
        # Required in production; nothing in the bench sends mail, so it is never contacted.
        ASSAY_SMTP_HOST="127.0.0.1",
        ASSAY_TOKEN_SIGNING_KEY=secrets.token_urlsafe(48),
        ASSAY_SESSION_SECRET=secrets.token_urlsafe(48),
        ASSAY_ENCRYPTION_KEY=secrets.token_urlsafe(48),
        ASSAY_HOST="127.0.0.1",
        ASSAY_PORT=str(port),
        ASSAY_WORKERS=str(workers),
        ASSAY_METRICS_PORT="0",
        ASSAY_LOG_LEVEL="INFO",
        ASSAY_RATE_LIMIT_SCORING_PER_KEY=UNTRIPPABLE_LIMIT,
        ASSAY_RATE_LIMIT_SCORING_PER_ORG=UNTRIPPABLE_LIMIT,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def ensure_artifacts() -> None:
    """Train the pack's models when build/ is missing (a few seconds)."""
    build = PACK_DIR / "build"
    if (build / "startup_success_lgbm.txt").exists() and (
        build / "startup_success_logreg.onnx"
    ).exists():
        return
    print("bench: training the startup-success pack (build/ is missing)")
    subprocess.run([sys.executable, str(PACK_DIR / "train.py")], check=True, cwd=REPO)


def migrate(env: dict[str, str]) -> None:
    subprocess.run([*SERVE, "migrate", "upgrade"], env=env, check=True, cwd=REPO)


def bootstrap(env: dict[str, str]) -> str:
    """An organisation, a predict-scoped API key and the pack's two ML models, made through
    the same services the API uses; returns the API key."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return asyncio.run(_bootstrap())
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def _bootstrap() -> str:
    import secrets

    from assay.accounts import service as accounts
    from assay.api_keys.service import create_api_key
    from assay.app import create_app
    from assay.audit.service import CLI
    from assay.core.permissions import BUILTIN_ROLES
    from assay.core.principal import PLATFORM, Principal, platform_in
    from assay.engine.pack import load_pack
    from assay.orgs import service as orgs
    from assay.registry.service import ModelRegistry
    from assay.settings import load_settings

    pack = load_pack(PACK_DIR)
    schema_document: dict[str, Any] = yaml.safe_load((PACK_DIR / "schema.yaml").read_text())
    app = create_app(load_settings())
    registry: ModelRegistry = app.state.registry
    async with app.router.lifespan_context(app), app.state.database.sessionmaker() as db:
        organisation = await orgs.create_organisation(db, CLI, PLATFORM, name="Bench", slug=None)
        principal = platform_in(organisation.id)
        for name in BENCH_MODELS:
            entry = pack.model(name)
            await registry.create_model(
                db, CLI, principal, name=name, kind="ml", description="bench"
            )
            manifest = {
                "schema": schema_document,
                "spec": entry.spec.model_dump(mode="json", exclude_none=True),
            }
            version = await registry.add_version(
                db,
                CLI,
                principal,
                name,
                manifest_text=json.dumps(manifest),
                artifact=entry.read_artifact(),
                signature=None,
            )
            await registry.move_alias(db, CLI, principal, name, "production", version.version)
        # Keys are made by a user, within that user's permissions: an owner of the org.
        owner = await accounts.create_user(
            db,
            app.state.identity,
            email="bench-owner@bench.invalid",
            password=secrets.token_urlsafe(32),
            check_policy=False,
        )
        await orgs.add_member(db, CLI, PLATFORM, organisation.id, owner, "owner")
        created = await create_api_key(
            db,
            app.state.identity,
            CLI,
            Principal(
                kind="user",
                id=owner.id,
                org_id=organisation.id,
                permissions=BUILTIN_ROLES["owner"],
                auth_method="cli",
            ),
            name="bench",
            scopes=["predict", "models:read", "system:read", "jobs:read", "jobs:write"],
            expires_at=None,
            allowed_cidrs=[],
            signing_required=False,
        )
        await db.commit()
        return created.plaintext


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(env: dict[str, str], log_path: Path) -> Server:
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*SERVE, "serve"], env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{env['ASSAY_PORT']}", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited; see {log_path}")
        try:
            if httpx.get(f"{server.base_url}/v2/health/ready", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the server did not become ready; see {log_path}")


def check_predict(server: Server, api_key: str, path: str, body: bytes) -> dict[str, Any]:
    """One request before measuring: it must succeed (and it loads the model)."""
    response = httpx.post(
        f"{server.base_url}{path}",
        content=body,
        headers={"content-type": "application/json", "x-api-key": api_key},
        timeout=30,
    )
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:500]}")
    answer: dict[str, Any] = response.json()
    return answer
