"""Per-organisation scoring quotas, from the database, cheap enough for every request.

`organisations.scoring_quota` (limits notation; NULL means the default quota) is set by
platform administrators (`PATCH /v1/admin/orgs/{id}`, `assay admin org set-quota`).
The rate limiter asks `quota_for(org_id)` on every scoring request, so the overrides
are held in process: one query loads all of them, kept `org_quota_cache_seconds`.
When the copy is stale, the first request reloads it and every request arriving
meanwhile waits for that same load (one query, however many requests). A change made
through this process applies at its commit; other processes see it within the cache
lifetime.

`ASSAY_RATE_LIMIT_ORG_OVERRIDES` still works: it applies to organisations that have no
quota in the database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping

from limits import parse_many
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.core.logging import get_logger
from assay.orgs.models import Organisation
from assay.settings import Settings

log = get_logger("assay.quotas")
# After a failed load, the previous copy is used for this long before trying again.
RETRY_AFTER_FAILURE_SECONDS = 1.0


class DatabaseQuotaOverrides:
    """`QuotaOverrides` (assay.http.rate_limit) backed by `organisations.scoring_quota`."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        fallback: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._ttl = settings.org_quota_cache_seconds
        source = settings.rate_limit_org_overrides if fallback is None else fallback
        self._fallback = {str(uuid.UUID(org)): quota for org, quota in source.items()}
        self._overrides: dict[str, str] | None = None
        self._fresh_until = 0.0
        self._loading: asyncio.Task[dict[str, str]] | None = None
        # Bumped by invalidate(): a load that began before a change cannot mark the
        # copy fresh with what it read.
        self._generation = 0

    async def quota_for(self, org_id: str) -> str | None:
        overrides = self._overrides
        if overrides is None or self._clock() >= self._fresh_until:
            overrides = await self._reload()
        return overrides.get(org_id) or self._fallback.get(org_id)

    def invalidate(self) -> None:
        """Reload on the next request (after this process changed a quota)."""
        self._generation += 1
        self._fresh_until = 0.0

    async def _reload(self) -> dict[str, str]:
        task = self._loading
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load())
            self._loading = task
        # Shielded: a caller that is cancelled (its client went away) must not cancel
        # the load the others are waiting for.
        return await asyncio.shield(task)

    async def _load(self) -> dict[str, str]:
        generation = self._generation
        try:
            async with self._sessionmaker() as db:
                rows = (
                    await db.execute(
                        select(Organisation.id, Organisation.scoring_quota).where(
                            Organisation.scoring_quota.is_not(None),
                            Organisation.deleted_at.is_(None),
                        )
                    )
                ).all()
        except (SQLAlchemyError, OSError) as exc:
            # Keep deciding with what we had (or the defaults) rather than fail requests.
            log.warning("quota_overrides_unavailable", error=type(exc).__name__)
            self._fresh_until = self._clock() + RETRY_AFTER_FAILURE_SECONDS
            return self._overrides or {}
        finally:
            self._loading = None
        overrides: dict[str, str] = {}
        for org_id, quota in rows:
            if quota is None:
                continue  # filtered by the query; here for the type checker
            try:
                parse_many(quota)
            except ValueError:
                # Written around the API (which validates): the default applies instead.
                log.warning("quota_override_invalid", org=str(org_id))
                continue
            overrides[str(org_id)] = quota
        self._overrides = overrides
        if generation == self._generation:
            self._fresh_until = self._clock() + self._ttl
        return overrides
