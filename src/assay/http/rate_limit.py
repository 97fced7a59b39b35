"""Rate limits and quotas by class, on the `limits` library, as FastAPI dependencies.

Classes and their keys (every limit is in settings, in `limits` notation):

- ``auth``: per client address; `limit_auth_account` adds a per-account limit.
- ``scoring``: per API key (else user, else address), plus a per-organisation quota
  that an operator can override per organisation through `QuotaOverrides`.
- ``management``: per API key or user (else address).
- ``default``: every route that declares no class: per principal on routes that
  authenticate (charged by authentication, once the principal is known), per address
  on anonymous ones. Liveness and readiness probes are exempt.

Declare a class in the route signature *after* the principal parameter, so the
principal is known when the limit runs::

    async def predict(principal: CanPredict, _: RateLimitScoring) -> ...

When several limits apply to a request, all are checked before any is charged, so a
refusal by one (the hourly limit, the organisation's quota) spends none of the others.

Storage is in process, or Redis when `redis_url` is set (one budget for all
processes). See docs/decisions/0003-rate-limits.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
import unicodedata
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from math import ceil
from typing import Annotated, Any, Protocol, cast

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError
from starlette.types import Scope

from assay.core.errors import DependencyUnavailable, RateLimited
from assay.core.logging import get_logger
from assay.core.metrics import RATE_LIMIT_STORAGE_ERRORS, RATE_LIMITED
from assay.http.rate_limit_storage import (
    InProcessRateLimitStorage,
    close_storage,
    create_redis_storage,
)
from assay.settings import Settings

APPLIED_STATE_KEY = "rate_limit_applied"


BUDGET_STATE_KEY = "rate_limit_budget"


# After a storage failure, decide without it for this long instead of waiting for a
# timeout on every request.
STORAGE_RETRY_SECONDS = 1.0


STORAGE_ERROR_LOG_INTERVAL_SECONDS = 10.0


STORAGE_ERRORS = (StorageError, RedisError, OSError)


# Liveness and readiness probes: orchestrators and load balancers call them every few
# seconds from a few shared addresses; a 429 there would take a healthy process out of
# rotation. They do no work a client could use to exhaust anything.
EXEMPT_PATHS = frozenset({"/livez", "/readyz", "/v2/health/live", "/v2/health/ready"})


log = get_logger("assay.ratelimit")


class RateClass(StrEnum):
    AUTH = "auth"
    SCORING = "scoring"
    MANAGEMENT = "management"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Budget:
    """What is left of one limit: reported in RateLimit-* headers."""

    limit: int
    remaining: int
    reset_seconds: int

    def is_tighter_than(self, other: Budget) -> bool:
        return (self.remaining, -self.reset_seconds) < (other.remaining, -other.reset_seconds)

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]


def record_budget(state: MutableMapping[str, Any], budget: Budget) -> None:
    """Keep the tightest budget seen during the request; the response reports it."""
    current = state.get(BUDGET_STATE_KEY)
    if current is None or budget.is_tighter_than(current):
        state[BUDGET_STATE_KEY] = budget


class QuotaOverrides(Protocol):
    """Per-organisation scoring quotas set by an operator (identity will back this with a
    database column); None means the default quota applies."""

    async def quota_for(self, org_id: str) -> str | None: ...


class InMemoryQuotaOverrides:
    """Quota overrides held in process, seeded from `rate_limit_org_overrides`."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self._overrides: dict[str, str] = {}
        for org_id, limit in (overrides or {}).items():
            self.set_quota(org_id, limit)

    async def quota_for(self, org_id: str) -> str | None:
        return self._overrides.get(org_id)

    def set_quota(self, org_id: str, limit: str | None) -> None:
        """Override `org_id`'s quota (limits notation), or restore the default with None."""
        if limit is None:
            self._overrides.pop(org_id, None)
            return
        parse_many(limit)  # a typo fails here, not on that organisation's next request
        self._overrides[org_id] = limit


@lru_cache(maxsize=1024)
def parse_limits(value: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(value))


@lru_cache(maxsize=4096)
def address_key(address: str | None) -> str:
    """The limiter key of a client address; IPv6 clients are keyed by their /64, since one
    subscriber usually holds a whole /64."""
    if not address:
        return "a:unknown"
    if ":" in address:
        try:
            network = ipaddress.IPv6Network((address, 64), strict=False)
        except ValueError:
            return f"a:{address}"
        return f"a:{network.network_address}/64"
    return f"a:{address}"


def principal_key(state: Mapping[str, Any]) -> str:
    api_key_id = state.get("api_key_id")
    if api_key_id:
        return f"k:{api_key_id}"
    principal_id = state.get("principal_id")
    if principal_id:
        return f"p:{principal_id}"
    return address_key(state.get("client_address"))


def account_key(account: str) -> str:
    # Hashed: account names (emails) are personal data and must not sit in Redis keys.
    canonical = unicodedata.normalize("NFKC", account).strip().casefold()
    return "u:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _seconds_until(epoch: float) -> int:
    return max(0, ceil(epoch - time.time()))


Check = tuple[tuple[RateLimitItem, ...], str]


class RateLimiter:
    """Decides, per request and class, whether a budget allows it, and reports what is left."""

    def __init__(
        self,
        settings: Settings,
        quotas: QuotaOverrides | None = None,
        storage: Storage | None = None,
    ) -> None:
        if storage is None:
            storage = (
                create_redis_storage(
                    settings.redis_url,
                    settings.rate_limit_namespace,
                    settings.rate_limit_redis_timeout_seconds,
                )
                if settings.redis_url
                else InProcessRateLimitStorage()
            )
        self.storage = storage
        self.backend = "redis" if settings.redis_url else "memory"
        self.quotas: QuotaOverrides = quotas or InMemoryQuotaOverrides(
            settings.rate_limit_org_overrides
        )
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._fail_open = frozenset(RateClass(c) for c in settings.rate_limit_fail_open_classes)
        self._auth_per_address = parse_limits(settings.rate_limit_auth_per_address)
        self._auth_per_account = parse_limits(settings.rate_limit_auth_per_account)
        self._scoring_per_key = parse_limits(settings.rate_limit_scoring_per_key)
        self._scoring_per_org = settings.rate_limit_scoring_per_org
        self._management = parse_limits(settings.rate_limit_management)
        self._default = parse_limits(settings.rate_limit_default)
        self._storage_unavailable_until = 0.0
        self._next_error_log_at = 0.0
        self._unlogged_errors = 0

    async def close(self) -> None:
        await close_storage(self.storage)

    async def enforce(self, scope: Scope, rate_class: RateClass) -> None:
        """Charge one request of `rate_class`; raise RateLimited (429) when over a limit."""
        state = scope.setdefault("state", {})
        state[APPLIED_STATE_KEY] = True
        await self._run(state, rate_class, await self._checks(rate_class, state))

    async def enforce_account(self, scope: Scope, account: str) -> None:
        """Charge one authentication attempt to `account`, whatever address it comes from."""
        state = scope.setdefault("state", {})
        state[APPLIED_STATE_KEY] = True
        checks: list[Check] = [(self._auth_per_account, account_key(account))]
        await self._run(state, RateClass.AUTH, checks)

    async def _checks(self, rate_class: RateClass, state: Mapping[str, Any]) -> list[Check]:
        # The most specific key first: when both refuse, the client hears about the
        # limit it can do something about (its key's), not the organisation's quota.
        if rate_class is RateClass.AUTH:
            return [(self._auth_per_address, address_key(state.get("client_address")))]
        if rate_class is RateClass.SCORING:
            checks: list[Check] = [(self._scoring_per_key, principal_key(state))]
            org_id = state.get("org_id")
            if org_id:
                quota = await self.quotas.quota_for(str(org_id)) or self._scoring_per_org
                checks.append((parse_limits(quota), f"o:{org_id}"))
            return checks
        if rate_class is RateClass.MANAGEMENT:
            return [(self._management, principal_key(state))]
        return [(self._default, principal_key(state))]

    async def _run(
        self, state: MutableMapping[str, Any], rate_class: RateClass, checks: Sequence[Check]
    ) -> None:
        if self._storage_unavailable_until > time.monotonic():
            self._decide_without_storage(rate_class, None)
            return
        strategy = self._strategy
        name = rate_class.value
        try:
            # Every limit is read before any is charged: a refusal by one spends none of
            # the others. The counts read here also give the budget reported afterwards,
            # so each limit costs one read and one atomic acquire (two Redis round trips).
            tightest: Budget | None = None
            for items, key in checks:
                for item in items:
                    stats = await strategy.get_window_stats(item, name, key)
                    if stats.remaining < 1:
                        self._refuse(state, rate_class, item, _seconds_until(stats.reset_time))
                    # An empty window reports no reset time; this request starts one.
                    reset = _seconds_until(stats.reset_time) or item.get_expiry()
                    budget = Budget(item.amount, stats.remaining - 1, reset)
                    if tightest is None or budget.is_tighter_than(tightest):
                        tightest = budget
            for items, key in checks:
                for item in items:
                    # Refused here only when another request took the last unit since
                    # the read above (another process, through Redis).
                    if not await strategy.hit(item, name, key):
                        stats = await strategy.get_window_stats(item, name, key)
                        self._refuse(state, rate_class, item, _seconds_until(stats.reset_time))
        except STORAGE_ERRORS as exc:
            self._decide_without_storage(rate_class, exc)
            return
        if tightest is not None:
            record_budget(state, tightest)

    @staticmethod
    def _refuse(
        state: MutableMapping[str, Any], rate_class: RateClass, item: RateLimitItem, reset: int
    ) -> None:
        retry_after = max(1, reset)
        state[BUDGET_STATE_KEY] = Budget(item.amount, 0, retry_after)
        RATE_LIMITED.labels(rate_class.value).inc()
        raise RateLimited(
            f"Too many requests; retry in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )

    def _decide_without_storage(self, rate_class: RateClass, exc: BaseException | None) -> None:
        fail_open = rate_class in self._fail_open
        decision = "open" if fail_open else "closed"
        RATE_LIMIT_STORAGE_ERRORS.labels(rate_class.value, decision).inc()
        if exc is not None:
            now = time.monotonic()
            self._storage_unavailable_until = now + STORAGE_RETRY_SECONDS
            # At thousands of requests a second an outage would flood the log: one line
            # per interval, with the count of those not written.
            if now >= self._next_error_log_at:
                log.warning(
                    "rate_limit_storage_unavailable",
                    backend=self.backend,
                    rate_class=rate_class.value,
                    decision=decision,
                    error=type(exc).__name__,
                    detail=str(exc)[:200],
                    unlogged_errors=self._unlogged_errors,
                )
                self._next_error_log_at = now + STORAGE_ERROR_LOG_INTERVAL_SECONDS
                self._unlogged_errors = 0
            else:
                self._unlogged_errors += 1
        if not fail_open:
            raise DependencyUnavailable(
                "Rate limiting is unavailable, so this request was refused; retry shortly.",
                headers={"Retry-After": str(ceil(STORAGE_RETRY_SECONDS))},
            )


def limiter_of(request: Request) -> RateLimiter:
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        msg = "the app has no rate limiter; call install_http_protection(app, settings)"
        raise RuntimeError(msg)
    return cast(RateLimiter, limiter)


class RateLimitDependency:
    """FastAPI dependency charging one request to a rate-limit class."""

    def __init__(self, rate_class: RateClass) -> None:
        self.rate_class = rate_class

    async def __call__(self, request: Request) -> None:
        await limiter_of(request).enforce(request.scope, self.rate_class)

    def __repr__(self) -> str:
        return f"rate_limit({self.rate_class.value!r})"


# One instance per class, so FastAPI's per-request dependency cache charges a class once
# even when a route reaches it through several dependencies.
_DEPENDENCIES = {rate_class: RateLimitDependency(rate_class) for rate_class in RateClass}


def rate_limit(rate_class: RateClass | str) -> RateLimitDependency:
    """The dependency for `rate_class` ("auth", "scoring", "management", "default")."""
    return _DEPENDENCIES[RateClass(rate_class)]


RateLimitAuth = Annotated[None, Depends(rate_limit(RateClass.AUTH))]


RateLimitScoring = Annotated[None, Depends(rate_limit(RateClass.SCORING))]


RateLimitManagement = Annotated[None, Depends(rate_limit(RateClass.MANAGEMENT))]


RateLimitDefault = Annotated[None, Depends(rate_limit(RateClass.DEFAULT))]


async def limit_auth_account(request: Request, account: str) -> None:
    """Charge one attempt to `account` (the submitted user name or email) before checking
    its credentials, so rotating client addresses does not reset the budget."""
    await limiter_of(request).enforce_account(request.scope, account)
