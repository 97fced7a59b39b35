"""Looking an indicator up: canonicalise, ask every provider at once, decide, keep it.

`LookupService.run` yields each provider's result as that provider finishes (the SSE
route streams them as they come), then the stored lookup with its verdict. Providers
still running at the deadline are reported as timeouts and the verdict is made from the
others. The lookup is written in its own transaction once the verdict is known.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.core.cursors import newest_first, page_of
from assay.core.db_types import utcnow
from assay.core.errors import NotFound
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import scoped
from assay.indicators.errors import IndicatorRefused
from assay.indicators.schemas import Indicator
from assay.indicators.service import canonicalise
from assay.lookups.errors import IndicatorRejected, LookupNotFound, VerdictModelMissing
from assay.lookups.models import Lookup
from assay.lookups.verdict import UNKNOWN, features, read_verdict, rule_weights
from assay.predictions.service import PredictService, Served
from assay.providers.service import (
    ConfiguredProvider,
    ProviderRegistry,
    ProviderResult,
    ProviderStatus,
)
from assay.registry.schemas import VersionRef
from assay.settings import Settings


def indicator_digest(indicator: Indicator) -> str:
    return hashlib.sha256(f"{indicator.type}:{indicator.value}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LookupFilter:
    indicator: str | None = None
    indicator_type: str | None = None
    verdict: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class LookupService:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        providers: ProviderRegistry,
        predict: PredictService,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.providers = providers
        self.predict = predict

    @staticmethod
    def canonical(text: str) -> Indicator:
        try:
            return canonicalise(text)
        except IndicatorRefused as exc:
            raise IndicatorRejected(
                f"The indicator cannot be looked up: {exc.message}",
                errors=[{"field": "indicator", "code": exc.code, "message": exc.message}],
            ) from None

    async def prepare(
        self, principal: OrgPrincipal, text: str, names: Sequence[str] | None
    ) -> tuple[Indicator, list[ConfiguredProvider], Served]:
        """Everything checked before any provider is called (so a bad request is a 4xx,
        also for a stream): the indicator, the providers, the verdict model."""
        indicator = self.canonical(text)
        configured, served = await self.setup(principal, names)
        return indicator, configured, served

    async def setup(
        self, principal: OrgPrincipal, names: Sequence[str] | None
    ) -> tuple[list[ConfiguredProvider], Served]:
        """The providers to ask (all enabled ones, or `names`) and the verdict model."""
        async with self.sessionmaker() as db:
            configured = await self.providers.configured(db, principal, names)
        try:
            served = await self.predict.load(
                principal, self.settings.lookup_model, VersionRef(alias="production")
            )
        except NotFound:
            raise VerdictModelMissing(
                f"This organisation has no model {self.settings.lookup_model!r} with alias "
                "production to decide verdicts; import the threat-intelligence pack "
                "(docs/threat-intel.md).",
            ) from None
        return configured, served

    async def gather(
        self,
        indicator: Indicator,
        configured: Sequence[ConfiguredProvider],
        *,
        deadline: float,
        force_refresh: bool,
    ) -> AsyncIterator[ProviderResult]:
        """Every provider asked at once; each result as its provider finishes. Providers
        still running at `deadline` (a monotonic time) come last, as timeouts."""
        caller = self.providers.caller
        tasks = {
            asyncio.create_task(
                caller.call(item, indicator, deadline=deadline, force_refresh=force_refresh)
            ): item.provider.name
            for item in configured
        }
        seen: set[str] = set()
        try:
            for finished in asyncio.as_completed(
                list(tasks), timeout=max(0.0, deadline - time.monotonic()) + 0.5
            ):
                result = await finished
                seen.add(result.provider)
                yield result
        except TimeoutError:
            # Each call stops at the deadline itself; this is the backstop.
            for name in tasks.values():
                if name not in seen:
                    yield ProviderResult(
                        name, ProviderStatus.TIMEOUT, detail="no answer before the deadline"
                    )
        finally:
            for task in tasks:
                task.cancel()

    async def run(
        self,
        principal: OrgPrincipal,
        indicator: Indicator,
        configured: Sequence[ConfiguredProvider],
        served: Served,
        *,
        force_refresh: bool,
        request_id: str | None,
    ) -> AsyncIterator[ProviderResult | Lookup]:
        """Each provider's result as it finishes, then the stored lookup."""
        started = time.monotonic()
        deadline = started + self.settings.lookup_deadline_seconds
        results: list[ProviderResult] = []
        async for result in self.gather(
            indicator, configured, deadline=deadline, force_refresh=force_refresh
        ):
            results.append(result)
            yield result
        lookup, _ = await self.decide(
            principal, indicator, results, served, started, request_id, record=True
        )
        async with self.sessionmaker() as db, db.begin():
            db.add(lookup)
        yield lookup

    async def look_up(
        self,
        principal: OrgPrincipal,
        indicator: Indicator,
        configured: Sequence[ConfiguredProvider],
        served: Served,
        *,
        force_refresh: bool,
        request_id: str | None,
        record: bool,
    ) -> tuple[Lookup, list[dict[str, Any]]]:
        """A whole lookup, not yet written: every provider asked, then the verdict (as
        `decide`, with `record`). For callers that need no stream (jobs, the watchlist)."""
        started = time.monotonic()
        deadline = started + self.settings.lookup_deadline_seconds
        results = [
            result
            async for result in self.gather(
                indicator, configured, deadline=deadline, force_refresh=force_refresh
            )
        ]
        return await self.decide(
            principal, indicator, results, served, started, request_id, record=record
        )

    async def decide(
        self,
        principal: OrgPrincipal,
        indicator: Indicator,
        results: list[ProviderResult],
        served: Served,
        started: float,
        request_id: str | None,
        *,
        record: bool,
    ) -> tuple[Lookup, list[dict[str, Any]]]:
        """The lookup with its verdict (not yet written). With `record`, the verdict's
        prediction record is written as any prediction's is; else its rows are returned
        for the caller to write in its own transaction (a job's checkpoint)."""
        order = {item: index for index, item in enumerate(sorted(r.provider for r in results))}
        results.sort(key=lambda r: order[r.provider])
        verdict, score, redistributed = UNKNOWN, None, False
        shares: dict[str, dict[str, float | None]] = {}
        model = None
        record_rows: list[dict[str, Any]] = []
        if any(r.status is ProviderStatus.OK for r in results):
            scorer = served.scorer
            row = features(results, list(scorer.schema.field_names))
            if record:
                outcome = (
                    await self.predict.predict_with(
                        principal, served, [row], strict=False, explain=True, request_id=request_id
                    )
                ).results[0]
            else:
                scored, record_rows = await self.predict.score_unrecorded(
                    principal, served, [row], explain=True, request_id=request_id
                )
                outcome = scored[0]
            decided = read_verdict(outcome, results, rule_weights(scorer.engine))
            verdict, score, redistributed = decided.verdict, decided.score, decided.redistributed
            shares = dict(decided.shares)
            model = f"{served.model.name}@{served.version.version}"
        entries = [_entry(result, shares.get(result.provider)) for result in results]
        lookup = Lookup(
            id=uuid.uuid4(),
            org_id=principal.org_id,
            indicator=indicator.value,
            indicator_digest=indicator_digest(indicator),
            indicator_type=str(indicator.type),
            verdict=verdict,
            score=score,
            model=model,
            results=entries,
            redistributed=redistributed,
            duration_ms=round((time.monotonic() - started) * 1000, 2),
            created_by=principal.actor_id,
            request_id=request_id,
            created_at=utcnow(),
        )
        return lookup, record_rows

    async def get(self, db: AsyncSession, principal: OrgPrincipal, lookup_id: uuid.UUID) -> Lookup:
        lookup = await db.scalar(scoped(principal, Lookup).where(Lookup.id == lookup_id))
        if lookup is None:
            raise LookupNotFound("No such lookup in this organisation.")
        return lookup

    async def history(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        where: LookupFilter,
        *,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Lookup], str | None]:
        """One page of past lookups, newest first, and the next page's cursor."""
        statement = scoped(principal, Lookup)
        if where.indicator is not None:
            statement = statement.where(
                Lookup.indicator_digest == indicator_digest(self.canonical(where.indicator))
            )
        if where.indicator_type is not None:
            statement = statement.where(Lookup.indicator_type == where.indicator_type)
        if where.verdict is not None:
            statement = statement.where(Lookup.verdict == where.verdict)
        if where.since is not None:
            statement = statement.where(Lookup.created_at >= where.since)
        if where.until is not None:
            statement = statement.where(Lookup.created_at < where.until)
        statement = newest_first(statement, Lookup, cursor, limit)
        return page_of(list((await db.scalars(statement)).all()), limit)


def _entry(result: ProviderResult, share: dict[str, float | None] | None) -> dict[str, Any]:
    entry = result.as_dict()
    entry["status"] = str(result.status)
    entry["level"] = str(result.level)
    entry.update(share or {"weight": None, "effective_weight": None, "contribution": None})
    return entry
