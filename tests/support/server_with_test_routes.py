"""Run the real Assay server with two test-only routes.

Started as a subprocess by the lifecycle tests; configured only through ASSAY_*
environment variables, exactly like `assay serve`:

* ``GET /test/slow?seconds=X`` holds a database session (a real query) for X seconds.
* ``GET /test/boom`` fails with an unexpected ``RuntimeError``. It keeps the value of
  ``TEST_BOOM_SECRET`` in a local variable; the exception message does not contain it,
  so the secret can only reach the error tracker through captured local variables.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from sqlalchemy import text

from assay.app import create_app
from assay.core.db import DbSession
from assay.core.secrets_store import with_generated_secrets
from assay.server import run_app
from assay.settings import Settings, load_settings

BOOM_MESSAGE = "test boom: deliberate failure in /test/boom"

router = APIRouter(prefix="/test")


@router.get("/slow")
async def slow(
    session: DbSession, seconds: Annotated[float, Query(ge=0, le=60)] = 0.0
) -> dict[str, float | int]:
    answer = await session.scalar(text("SELECT 1"))
    await asyncio.sleep(seconds)
    return {"slept": seconds, "db": int(answer or 0)}


@router.get("/boom")
async def boom() -> None:
    # Deliberately not named like a secret: only include_local_variables=False keeps it
    # out of the error report, not the key-name scrubber.
    held_value = os.environ.get("TEST_BOOM_SECRET", "")
    raise RuntimeError(f"{BOOM_MESSAGE} ({len(held_value)} characters held)")


def build_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.include_router(router)
    return app


def main() -> None:
    settings = with_generated_secrets(load_settings())
    run_app(build_app(settings), settings)


if __name__ == "__main__":
    main()
