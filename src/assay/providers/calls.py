"""Calling providers: the result cache, the breaker, the quota, timeouts and retries.

One `ProviderCaller` per process. A call first looks in the result cache (per
organisation, provider and canonical indicator), then asks the breaker and the
provider's quota (both shared by every process), then makes at most `1 + retries`
attempts, each within the provider's timeout and the lookup's deadline, retrying only
idempotent requests after a connection failure or a 5xx. Every path ends in a
`ProviderResult`: a provider's failure is data for the verdict, never an exception.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
import uuid
from dataclasses import dataclass

from limits import parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from assay.core.breaker import CircuitBreaker
from assay.core.cache import CACHE_ERRORS, Cache
from assay.core.logging import get_logger
from assay.http.rate_limit_storage import (
    InProcessRateLimitStorage,
    close_storage,
    create_redis_storage,
)
from assay.indicators.schemas import Indicator, IndicatorType
from assay.outbound.errors import DestinationRefused, OutboundFailed
from assay.outbound.service import OutboundClient, OutboundResponse
from assay.providers.compiled import CompiledProvider, CompiledRequest
from assay.providers.definition import ProviderDefinition
from assay.providers.metrics import BREAKER_STATE, PROVIDER_CALLS, PROVIDER_LATENCY
from assay.providers.plugins import Evidence, PluginHttp, PluginNoData
from assay.providers.requests import build_request, link_for
from assay.providers.results import (
    ANSWERED,
    ProviderResult,
    ProviderStatus,
    level_of,
    score_answer,
)
from assay.settings import Settings

log = get_logger("assay.providers")

# How long an answer is reused unless the provider's definition says otherwise:
# addresses change hands quickly, names and URLs less so, a file's content never.
DEFAULT_TTL_SECONDS: dict[IndicatorType, int] = {
    IndicatorType.IPV4: 3600,
    IndicatorType.IPV6: 3600,
    IndicatorType.DOMAIN: 3 * 3600,
    IndicatorType.URL: 3 * 3600,
    IndicatorType.EMAIL: 3 * 3600,
    IndicatorType.MD5: 7 * 86400,
    IndicatorType.SHA1: 7 * 86400,
    IndicatorType.SHA256: 7 * 86400,
}


@dataclass(frozen=True, slots=True)
class ConfiguredProvider:
    """An organisation's provider, ready to call: its compiled definition and secret."""

    org_id: uuid.UUID
    provider: CompiledProvider
    credential: str | None
    base_url: str


_QUOTA_ERRORS: tuple[type[Exception], ...] = (StorageError, *CACHE_ERRORS)


def _cache_key(org_id: uuid.UUID, provider: str, indicator: Indicator) -> str:
    # Hashed: the cache never holds an indicator in clear, nor anything unbounded.
    digest = hashlib.sha256(f"{indicator.type}:{indicator.value}".encode()).hexdigest()
    return f"provider-result:{org_id}:{provider}:{digest}"


def _retry_after(response: OutboundResponse) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return float(value)
    except ValueError:
        return 60.0


def _parsed(response: OutboundResponse) -> tuple[object, str]:
    """The JSON document of a 2xx answer, or why there is none."""
    status = response.status_code
    if status in (401, 403):
        return None, f"the provider refused the credential ({status})"
    if not 200 <= status < 300:
        return None, f"the provider answered {status}"
    if response.truncated:
        return None, "the answer is too long"
    try:
        return json.loads(response.body), ""
    except ValueError:
        return None, "the answer is not JSON"


def create_quota_storage(settings: Settings) -> Storage:
    """Where provider quotas are counted: Redis when configured (every process shares
    them), else this process."""
    if settings.redis_url:
        return create_redis_storage(
            settings.redis_url,
            settings.rate_limit_namespace,
            settings.rate_limit_redis_timeout_seconds,
        )
    return InProcessRateLimitStorage()


class ProviderCaller:
    def __init__(
        self, settings: Settings, cache: Cache, quota_storage: Storage, outbound: OutboundClient
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.breaker = CircuitBreaker(settings, cache)
        self._quota = SlidingWindowCounterRateLimiter(quota_storage)
        self._quota_storage = quota_storage
        self.outbound = outbound

    async def close(self) -> None:
        await close_storage(self._quota_storage)

    @property
    def allow_http(self) -> bool:
        return self.outbound.policy.allow_http

    async def call(
        self,
        configured: ConfiguredProvider,
        indicator: Indicator,
        *,
        deadline: float,
        force_refresh: bool = False,
    ) -> ProviderResult:
        """What `configured` says about `indicator`, by `deadline` (a monotonic time)."""
        definition = configured.provider.definition
        name = definition.name
        request = configured.provider.request_for(indicator.type)
        if not configured.provider.answers_for(indicator.type):
            return self._count(ProviderResult(name, ProviderStatus.UNSUPPORTED))
        link = link_for(definition, indicator)
        credential = definition.credential
        if credential is not None and credential.required and not configured.credential:
            return self._count(
                ProviderResult(
                    name,
                    ProviderStatus.NOT_CONFIGURED,
                    link=link,
                    detail="no credential set for this provider",
                )
            )
        key = _cache_key(configured.org_id, name, indicator)
        if not force_refresh:
            cached = await self._cached(key)
            if cached is not None:
                PROVIDER_CALLS.labels(name, "cached").inc()
                return cached
        blocked = await self.breaker.blocked(configured.org_id, name)
        if blocked is not None:
            detail = (
                "failing lately; not called until its cool-down ends"
                if blocked == "circuit_open"
                else "asked to slow down (429); not called until its Retry-After ends"
            )
            return self._count(
                ProviderResult(name, ProviderStatus(blocked), link=link, detail=detail)
            )
        if not await self._within_quota(configured, name):
            return self._count(
                ProviderResult(
                    name,
                    ProviderStatus.RATE_LIMITED,
                    link=link,
                    detail=f"its quota ({definition.rate_limit}) is spent",
                )
            )
        if request is None:
            result = await self._plugin_attempts(configured, indicator, deadline)
        else:
            result = await self._attempts(configured, request, indicator, deadline)
        result = dataclasses.replace(result, link=link)
        await self._after(configured, result, key, indicator)
        return self._count(result)

    async def _cached(self, key: str) -> ProviderResult | None:
        try:
            raw = await self.cache.get(key)
        except CACHE_ERRORS:
            return None
        if raw is None:
            return None
        try:
            result = ProviderResult.from_json(raw)
        except (ValueError, TypeError, KeyError):
            return None
        age = max(0.0, time.time() - (result.fetched_at or time.time()))
        return dataclasses.replace(result, cached=True, age_seconds=round(age, 3), latency_ms=0.0)

    async def _within_quota(self, configured: ConfiguredProvider, name: str) -> bool:
        spec = configured.provider.definition.rate_limit
        if not spec:
            return True
        keys = ("provider", str(configured.org_id), name)
        try:
            items = parse_many(spec)
            # All windows are checked before any is charged.
            for item in items:
                if not await self._quota.test(item, *keys):
                    return False
            for item in items:
                await self._quota.hit(item, *keys)
        except _QUOTA_ERRORS:
            log.warning("provider_quota_unavailable", provider=name)
        except ValueError:
            log.warning("provider_quota_invalid", provider=name, rate_limit=spec)
        return True

    async def _attempts(
        self,
        configured: ConfiguredProvider,
        request: CompiledRequest,
        indicator: Indicator,
        deadline: float,
    ) -> ProviderResult:
        definition = configured.provider.definition
        name = definition.name
        built = build_request(
            definition,
            request.template,
            indicator,
            base_url=configured.base_url,
            credential=configured.credential,
        )
        client = self._client_for(definition)
        attempts = 1 + (definition.retries if definition.is_idempotent(request.template) else 0)
        started = time.monotonic()
        result = ProviderResult(name, ProviderStatus.TIMEOUT, detail="no time left to call it")
        for attempt in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                break
            try:
                async with asyncio.timeout(remaining):
                    response = await client.request(
                        built.method, built.url, content=built.content, headers=built.headers
                    )
            except TimeoutError:
                result = ProviderResult(
                    name, ProviderStatus.TIMEOUT, detail="no answer before the lookup's deadline"
                )
                break
            except DestinationRefused as exc:
                return ProviderResult(
                    name, ProviderStatus.ERROR, detail=f"its address is refused: {exc.detail}"
                )
            except OutboundFailed as exc:
                status = ProviderStatus.TIMEOUT if exc.reason == "timeout" else ProviderStatus.ERROR
                result = ProviderResult(name, status, detail=exc.detail)
                continue
            PROVIDER_LATENCY.labels(name).observe(response.elapsed_ms / 1000)
            result = self._read(configured, request, response)
            if response.status_code >= 500 and attempt + 1 < attempts:
                continue
            break
        elapsed = (time.monotonic() - started) * 1000
        return dataclasses.replace(result, latency_ms=round(elapsed, 2))

    def _client_for(self, definition: ProviderDefinition) -> OutboundClient:
        return self.outbound.with_policy(
            dataclasses.replace(
                self.outbound.policy,
                connect_timeout_seconds=definition.connect_timeout_seconds,
                timeout_seconds=definition.timeout_seconds,
                max_response_bytes=self.settings.provider_max_response_bytes,
            )
        )

    async def _plugin_attempts(
        self, configured: ConfiguredProvider, indicator: Indicator, deadline: float
    ) -> ProviderResult:
        """A plugin's fetch and normalise, within the deadline; retried after a failure
        when the definition says the plugin's calls are idempotent (the default)."""
        provider = configured.provider
        plugin = provider.plugin
        assert plugin is not None  # noqa: S101 - called for plugin providers only
        name, definition = provider.name, provider.definition
        http = PluginHttp(self._client_for(definition))
        attempts = 1 + (definition.retries if definition.idempotent is not False else 0)
        started = time.monotonic()
        result = ProviderResult(name, ProviderStatus.TIMEOUT, detail="no time left to call it")
        for _ in range(attempts):
            remaining = min(deadline - time.monotonic(), definition.timeout_seconds)
            if remaining <= 0.05:
                break
            try:
                async with asyncio.timeout(remaining):
                    answer = await plugin.fetch(
                        indicator,
                        base_url=configured.base_url,
                        credential=configured.credential,
                        http=http,
                    )
                evidence = plugin.normalise(indicator, answer)
            except TimeoutError:
                result = ProviderResult(name, ProviderStatus.TIMEOUT, detail="no answer in time")
                break
            except PluginNoData:
                result = ProviderResult(name, ProviderStatus.NO_DATA, fetched_at=time.time())
                break
            except DestinationRefused as exc:
                result = ProviderResult(
                    name, ProviderStatus.ERROR, detail=f"its address is refused: {exc.detail}"
                )
                break
            except Exception as exc:  # noqa: BLE001 - a plugin failing is its provider failing, not the lookup
                log.warning("provider_plugin_failed", provider=name, error=type(exc).__name__)
                result = ProviderResult(
                    name, ProviderStatus.ERROR, detail=f"the plugin failed: {type(exc).__name__}"
                )
            else:
                result = self._evidence(name, definition, evidence)
                break
        elapsed = (time.monotonic() - started) * 1000
        return dataclasses.replace(result, latency_ms=round(elapsed, 2))

    @staticmethod
    def _evidence(name: str, definition: ProviderDefinition, evidence: Evidence) -> ProviderResult:
        if evidence.score is None:
            return ProviderResult(
                name, ProviderStatus.NO_DATA, fields=evidence.fields, fetched_at=time.time()
            )
        score = min(100.0, max(0.0, float(evidence.score)))
        return ProviderResult(
            name,
            ProviderStatus.OK,
            score=round(score, 2),
            level=level_of(score, definition.levels),
            evidence=evidence.evidence,
            fields=evidence.fields,
            fetched_at=time.time(),
        )

    def _read(
        self, configured: ConfiguredProvider, request: CompiledRequest, response: OutboundResponse
    ) -> ProviderResult:
        name = configured.provider.name
        status = response.status_code
        if status == 429:
            return ProviderResult(
                name,
                ProviderStatus.RATE_LIMITED,
                detail="the provider answered 429",
                fields={"retry_after": _retry_after(response)},
            )
        if status in request.template.no_data_statuses:
            return ProviderResult(name, ProviderStatus.NO_DATA, fetched_at=time.time())
        document, problem = _parsed(response)
        if problem:
            return ProviderResult(name, ProviderStatus.ERROR, detail=problem)
        outcome, score, level, evidence, fields, detail = score_answer(
            request, document, configured.provider.definition.levels
        )
        return ProviderResult(
            name,
            outcome,
            score=None if score is None else round(score, 2),
            level=level,
            evidence=evidence,
            fields=fields,
            detail=detail,
            fetched_at=time.time(),
        )

    async def _after(
        self,
        configured: ConfiguredProvider,
        result: ProviderResult,
        key: str,
        indicator: Indicator,
    ) -> None:
        org_id, name = configured.org_id, configured.provider.name
        if result.status in ANSWERED:
            if await self.breaker.succeeded(org_id, name):
                BREAKER_STATE.labels(name).set(0)
            ttl = configured.provider.definition.cache_ttl_seconds.get(
                indicator.type, DEFAULT_TTL_SECONDS[indicator.type]
            )
            if ttl > 0:
                try:
                    await self.cache.set(key, result.to_json(), ttl)
                except CACHE_ERRORS:
                    log.warning("provider_result_cache_unavailable", provider=name)
        elif result.status is ProviderStatus.RATE_LIMITED:
            await self.breaker.cool_down(org_id, name, float(result.fields.get("retry_after", 60)))
        elif result.status in (
            ProviderStatus.TIMEOUT,
            ProviderStatus.ERROR,
        ) and await self.breaker.failed(org_id, name):
            BREAKER_STATE.labels(name).set(2)

    @staticmethod
    def _count(result: ProviderResult) -> ProviderResult:
        PROVIDER_CALLS.labels(result.provider, str(result.status)).inc()
        return result
