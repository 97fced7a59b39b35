"""What the system routes report: readiness (whether every dependency this process
needs answers in time), the metrics exposition, and the system information."""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from prometheus_client import generate_latest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from assay import __version__
from assay.core.cache import Cache
from assay.core.db import Database
from assay.core.errors import DependencyUnavailable
from assay.core.logging import get_logger
from assay.core.metrics import exposition_registry
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import scoped
from assay.engine.runtimes import runtime_versions
from assay.predictions.models import PredictionRecord
from assay.registry.service import ModelRegistry
from assay.settings import Settings
from assay.system.schemas import ModelUsage, SystemInfo, Usage

log = get_logger("assay.health")


async def _probe(name: str, check: Callable[[], Awaitable[None]], limit_seconds: float) -> str:
    try:
        await asyncio.wait_for(check(), timeout=limit_seconds)
    except TimeoutError:
        log.warning("readiness_check_failed", dependency=name, reason="timeout")
        return "timeout"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness_check_failed", dependency=name, reason=type(exc).__name__)
        return "unavailable"
    return "ok"


async def check_readiness(database: Database, cache: Cache, limit_seconds: float) -> dict[str, str]:
    """Run every dependency check concurrently, each bounded by `limit_seconds`."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {"database": database.ping}
    if cache.backend != "memory":
        checks[cache.backend] = cache.ping
    results = await asyncio.gather(*(_probe(n, c, limit_seconds) for n, c in checks.items()))
    return dict(zip(checks, results, strict=True))


USAGE_WINDOW = timedelta(days=1)


class SystemService:
    """The process's view of itself and of the dependencies it needs."""

    def __init__(
        self, settings: Settings, database: Database, cache: Cache, registry: ModelRegistry
    ) -> None:
        self._settings = settings
        self._database = database
        self._cache = cache
        self._registry = registry

    async def require_ready(self, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Every dependency's check result, or `DependencyUnavailable` (503) naming those
        that did not answer, with `extra` and every result (`checks`) in the problem."""
        checks = await check_readiness(
            self._database, self._cache, self._settings.health_check_timeout_seconds
        )
        failing = sorted(name for name, result in checks.items() if result != "ok")
        if failing:
            raise DependencyUnavailable(
                f"Not ready: {', '.join(failing)} did not answer.",
                extra={**(extra or {}), "checks": checks},
            )
        return checks

    async def metrics_exposition(self) -> bytes:
        # generate_latest walks the registry (with several workers, reads every worker's
        # files): small, but kept off the event loop anyway.
        return await anyio.to_thread.run_sync(generate_latest, exposition_registry())

    async def info(self, db: AsyncSession, principal: OrgPrincipal) -> SystemInfo:
        """Versions of Assay and its runtimes, the backends, and the organisation's
        model versions with their health and what of them is loaded here."""
        overview = await self._registry.serving_overview(db, principal)
        return SystemInfo(
            version=__version__,
            python=platform.python_version(),
            runtimes=runtime_versions(),
            database=self._database.dialect,
            cache=self._cache.backend,
            loaded_models=overview.loaded,
            models=overview.versions,
        )

    async def usage(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Usage:
        """The organisation's own scoring between `since` (inclusive; default a day
        before `until`) and `until` (default now), from its own prediction records."""
        until = until or datetime.now(UTC)
        since = since or until - USAGE_WINDOW
        rows = await db.execute(
            scoped(principal, PredictionRecord)
            .with_only_columns(
                PredictionRecord.model_name,
                PredictionRecord.version,
                func.count(),
                func.avg(PredictionRecord.latency_ms),
                func.max(PredictionRecord.created_at),
            )
            .where(PredictionRecord.created_at >= since, PredictionRecord.created_at < until)
            .group_by(PredictionRecord.model_name, PredictionRecord.version)
            .order_by(PredictionRecord.model_name, PredictionRecord.version)
        )
        models = [
            ModelUsage(
                model=name,
                version=version,
                predictions=count,
                mean_latency_ms=round(float(latency or 0.0), 3),
                last_at=as_utc(last),
            )
            for name, version, count, latency, last in rows.all()
        ]
        return Usage(
            since=since,
            until=until,
            predictions=sum(m.predictions for m in models),
            models=models,
        )


def as_utc(value: datetime) -> datetime:
    # SQLite's aggregate returns a naive value, though every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
