"""Sending one prompt to a target: its rate limit, retries, breaker and answer parsing.

One `TargetClient` per process. Every request goes through the outbound guard (address
checks, pinning, size and time bounds). The per-minute rate limit lives in the same
storage as provider quotas, so every process scanning the same target shares it; unlike a
provider's quota, a scan *waits* for the window rather than skipping the attempt — an
attempt skipped for pacing would be a hole in the scan. 429 and 503 are retried after
their Retry-After (capped); other failures after a short backoff; the breaker (shared
with providers' implementation, keys of their own) stops a scan from hammering a target
that keeps failing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from assay.core.breaker import CircuitBreaker
from assay.core.cache import CACHE_ERRORS, Cache, InProcessCache
from assay.core.logging import get_logger
from assay.http.rate_limit_storage import InProcessRateLimitStorage
from assay.outbound.errors import DestinationRefused, OutboundFailed
from assay.outbound.service import OutboundClient, OutboundPolicy, OutboundResponse
from assay.settings import Settings
from assay.targets.schemas import PROMPT_SLOT

log = get_logger("assay.targets")

_RATE_ERRORS: tuple[type[Exception], ...] = (StorageError, *CACHE_ERRORS)

# The longest a Retry-After is honoured before the attempt is given up as an error.
MAX_RETRY_AFTER_SECONDS = 60.0
_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class ReadyTarget:
    """A target with its secrets opened, ready to send to."""

    org_id: uuid.UUID
    name: str
    kind: str
    url: str
    model: str | None
    temperature: float | None
    rest: dict[str, Any] | None
    credential: str | None
    credential_header: str
    credential_scheme: str
    system_prompt: str | None
    requests_per_minute: int
    concurrency: int
    timeout_seconds: float
    max_retries: int


@dataclass(frozen=True, slots=True)
class TargetAnswer:
    """What one prompt got: the answer text, or why there is none."""

    status: str  # answered | error
    text: str | None = None
    tokens: int | None = None
    latency_ms: float | None = None
    http_status: int | None = None
    detail: str | None = None
    retries: int = 0


def _put_prompt(value: Any, prompt: str) -> Any:
    """The body template with the prompt as the one `{{prompt}}` value (a JSON value, so
    no quoting of the prompt can change the body's structure)."""
    if isinstance(value, dict):
        return {key: _put_prompt(item, prompt) for key, item in value.items()}
    if isinstance(value, list):
        return [_put_prompt(item, prompt) for item in value]
    if value == PROMPT_SLOT:
        return prompt
    return value


def _at(document: object, path: str) -> object:
    here = document
    for part in path.split("."):
        if isinstance(here, dict):
            here = here.get(part)
        elif isinstance(here, list) and part.isdigit() and int(part) < len(here):
            here = here[int(part)]
        else:
            return None
    return here


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def build_request(
    target: ReadyTarget, prompt: str, system: str | None
) -> tuple[bytes, dict[str, str]]:
    """The JSON body and headers of one prompt to `target`."""
    headers = {"content-type": "application/json", "accept": "application/json"}
    if target.credential:
        scheme = f"{target.credential_scheme} " if target.credential_scheme else ""
        headers[target.credential_header.lower()] = scheme + target.credential
    if target.kind == "openai_chat":
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        body: dict[str, Any] = {"model": target.model, "messages": messages}
        if target.temperature is not None:
            body["temperature"] = target.temperature
    else:
        template = target.rest or {}
        body = _put_prompt(template.get("body", {}), prompt)
    return json.dumps(body, ensure_ascii=False).encode(), headers


def read_answer(target: ReadyTarget, response: OutboundResponse) -> TargetAnswer:
    """The answer text (and token usage, when reported) of a 2xx reply."""
    if response.truncated:
        return TargetAnswer("error", http_status=response.status_code, detail="answer too long")
    try:
        document = json.loads(response.body)
    except ValueError:
        return TargetAnswer("error", http_status=response.status_code, detail="answer not JSON")
    if target.kind == "openai_chat":
        text = _at(document, "choices.0.message.content")
        usage = _at(document, "usage.total_tokens")
    else:
        template = target.rest or {}
        text = _at(document, str(template.get("answer_path", "")))
        usage_path = template.get("usage_path")
        usage = _at(document, str(usage_path)) if usage_path else None
    if not isinstance(text, str):
        return TargetAnswer(
            "error", http_status=response.status_code, detail="no answer text where expected"
        )
    tokens = int(usage) if isinstance(usage, int | float) and not isinstance(usage, bool) else None
    return TargetAnswer("answered", text=text, tokens=tokens, http_status=response.status_code)


class TargetClient:
    def __init__(
        self, settings: Settings, cache: Cache, rate_storage: Storage, outbound: OutboundClient
    ) -> None:
        self.settings = settings
        self.breaker = CircuitBreaker(settings, cache)
        self._storage = rate_storage
        self._limiter = SlidingWindowCounterRateLimiter(rate_storage)
        self.outbound = outbound

    @classmethod
    def for_registration(cls, settings: Settings) -> TargetClient:
        """A client for a process that registers targets but never sends to them (the
        CLI, the demo): here only for the URL rules its policy carries."""
        return cls(
            settings,
            InProcessCache(16),
            InProcessRateLimitStorage(),
            OutboundClient(OutboundPolicy.from_settings(settings)),
        )

    @staticmethod
    def breaker_name(target: ReadyTarget) -> str:
        # Provider names cannot hold "/": a target never shares a provider's breaker.
        return f"target/{target.name}"

    async def _paced(self, target: ReadyTarget, deadline: float) -> bool:
        """Wait for room in the target's per-minute window; False if the deadline passes
        first. A rate store that cannot answer paces nothing (timeouts still apply)."""
        item = RateLimitItemPerMinute(target.requests_per_minute)
        keys = ("target", str(target.org_id), target.name)
        while True:
            try:
                if await self._limiter.hit(item, *keys):
                    return True
                stats = await self._limiter.get_window_stats(item, *keys)
            except _RATE_ERRORS:
                log.warning("target_rate_limit_unavailable", target=target.name)
                return True
            wait = max(0.05, stats.reset_time - time.time())
            if time.monotonic() + wait >= deadline:
                return False
            await asyncio.sleep(min(wait, 1.0))  # pacing a scan to the target's limit

    def _client_for(self, target: ReadyTarget) -> OutboundClient:
        return self.outbound.with_policy(
            dataclasses.replace(
                self.outbound.policy,
                timeout_seconds=target.timeout_seconds,
                max_response_bytes=self.settings.redteam_max_answer_bytes,
            )
        )

    async def send(
        self, target: ReadyTarget, prompt: str, *, system: str | None, deadline: float
    ) -> TargetAnswer:
        """Send `prompt` (with `system` for chat targets) by `deadline` (monotonic)."""
        name = self.breaker_name(target)
        blocked = await self.breaker.blocked(target.org_id, name)
        if blocked is not None:
            return TargetAnswer("error", detail=f"not called: {blocked.replace('_', ' ')}")
        content, headers = build_request(target, prompt, system)
        started = time.monotonic()
        answer, retries = await self._attempts(target, content, headers, deadline)
        if answer.status == "answered":
            await self.breaker.succeeded(target.org_id, name)
        elif answer.http_status is None or answer.http_status >= 500 or answer.http_status == 429:
            await self.breaker.failed(target.org_id, name)
        latency = round((time.monotonic() - started) * 1000, 2)
        return dataclasses.replace(answer, latency_ms=latency, retries=retries)

    async def _attempts(
        self, target: ReadyTarget, content: bytes, headers: dict[str, str], deadline: float
    ) -> tuple[TargetAnswer, int]:
        """At most 1 + max_retries requests; the last answer and how many were retries."""
        client = self._client_for(target)
        answer = TargetAnswer("error", detail="no time left to send it")
        for attempt in range(1 + target.max_retries):
            if not await self._paced(target, deadline):
                detail = "the rate limit left no time before the deadline"
                return TargetAnswer("error", detail=detail), attempt
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                return answer, attempt
            answer, wait = await self._once(client, target, content, headers, remaining, attempt)
            last = attempt == target.max_retries
            if wait is None or last or time.monotonic() + wait >= deadline:
                return answer, attempt
            await asyncio.sleep(wait)  # the target asked for it (Retry-After), or backoff
        return answer, target.max_retries

    async def _once(
        self,
        client: OutboundClient,
        target: ReadyTarget,
        content: bytes,
        headers: dict[str, str],
        remaining: float,
        attempt: int,
    ) -> tuple[TargetAnswer, float | None]:
        """One request: its answer, and how long to wait before retrying (None: do not)."""
        backoff = _BACKOFF_SECONDS * (2**attempt)
        try:
            async with asyncio.timeout(remaining):
                response = await client.request(
                    "POST", target.url, content=content, headers=headers
                )
        except TimeoutError:
            return TargetAnswer("error", detail="no answer before the attempt's deadline"), None
        except DestinationRefused as exc:
            return TargetAnswer("error", detail=f"its address is refused: {exc.detail}"), None
        except OutboundFailed as exc:
            return TargetAnswer("error", detail=f"{exc.reason}: {exc.detail}"), backoff
        return _judged(target, response, backoff)


def _judged(
    target: ReadyTarget, response: OutboundResponse, backoff: float
) -> tuple[TargetAnswer, float | None]:
    """What a reply means: an answer, or an error with how long to wait before retrying
    (None: a retry would not help)."""
    status = response.status_code
    if 200 <= status < 300:
        return read_answer(target, response), None
    if status in (429, 503):
        wait = retry_after_seconds(response.headers.get("retry-after"))
        wait = backoff if wait is None else wait
        if wait > MAX_RETRY_AFTER_SECONDS:
            detail = f"asked to wait {wait:.0f} s"
            return TargetAnswer("error", http_status=status, detail=detail), None
        return TargetAnswer("error", http_status=status, detail=f"it answered {status}"), wait
    if status in (401, 403):
        detail = f"the credential was refused ({status})"
        return TargetAnswer("error", http_status=status, detail=detail), None
    retry = backoff if status >= 500 else None
    return TargetAnswer("error", http_status=status, detail=f"it answered {status}"), retry
