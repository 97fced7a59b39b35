"""Turning credentials into a principal, cheaply enough for the scoring hot path.

A session's or API key's checked state (active user, active organisation, role,
permissions) is cached for `auth_state_cache_seconds` (at most 5) in the shared cache.
On a cache hit nothing else is read: no database, no further cache call.

Revocation (logout, a disabled user, a suspended organisation, a revoked key) writes
a "revoked" marker into the same cache once the transaction that revoked commits, and
before the revoking request is answered. With Redis it takes effect on the next
request on every process; with the in-process cache, on this process at once and on
others within the cache lifetime. A role change writes a short "stale" marker instead,
so the next request reloads the state.

A cache miss loads the state from the database and stores it only if the key is still
empty (SET NX): a load that read the database just before a revocation committed can
never overwrite the revoked or stale marker written after it.

When the cache cannot answer (Redis down), authentication goes on without it: every
request loads its state from the database, the source of truth, so revocation stays
exact; nothing is stored, the cache is left alone for `CACHE_RETRY_SECONDS` after each
failure, and failures are counted and logged at most once per interval.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assay.accounts.models import User
from assay.api_keys.models import ApiKey
from assay.auth.models import AuthSession
from assay.auth.principal_state import (
    address_allowed,
    api_key_cache_key,
    principal_from_session_state,
    role_permissions,
    session_cache_key,
    session_state,
)
from assay.auth.tokens import ACCESS, InvalidToken, TokenSigner, parse_api_key
from assay.core.after_commit import after_commit_await
from assay.core.cache import CACHE_ERRORS, Cache
from assay.core.crypto import derive_key, digests_equal, keyed_digest, token_digest
from assay.core.errors import Unauthorized
from assay.core.logging import get_logger
from assay.core.principal import OrgPrincipal, Principal
from assay.core.tenancy import across_tenants
from assay.orgs.models import Membership, Organisation
from assay.settings import Settings

log = get_logger("assay.authn")


_REVOKED = b'{"revoked":true}'


# "Reload me": the state changed (a role), but the credential is still good.
_STALE = b'{"stale":true}'


_LAST_USED_EVERY_SECONDS = 60.0


# After a failed cache call, go straight to the database for this long rather than wait
# for the cache's timeout on every request.
CACHE_RETRY_SECONDS = 1.0


CACHE_ERROR_LOG_INTERVAL_SECONDS = 10.0


AUTH_CACHE_ERRORS = Counter(
    "assay_auth_cache_errors",
    "Authentication cache operations that failed (Redis unreachable), by operation: "
    "read and store (the request was authenticated from the database), revoke (a "
    "revocation reached the database but not the cache), nonce (a signed request was "
    "refused with 503).",
    ["operation"],
)


class NotAuthenticated(Unauthorized):
    title = "Authentication required"


class Authenticator:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        cache: Cache,
        signer: TokenSigner,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.cache = cache
        self.signer = signer
        assert settings.encryption_key is not None  # noqa: S101 - guaranteed by create_app
        self.api_key_pepper = derive_key(
            settings.encryption_key.get_secret_value(), "assay api-key pepper v1"
        )
        self._state_ttl = settings.auth_state_cache_seconds
        # A revoked marker outlives every access token that could name the session.
        self._marker_ttl = float(max(settings.access_token_ttl_seconds, 60) + 60)
        # A stale marker need only outlast a load that began before the change committed.
        self._stale_ttl = max(self._state_ttl, 1.0)
        self._last_used_written: dict[str, float] = {}
        # Non-zero only after a cache failure: until then (monotonic time) skip the cache.
        self._cache_resume_at = 0.0
        self._next_error_log_at = 0.0
        self._unlogged_errors = 0

    # --- credentials -> principal --------------------------------------------------------

    async def from_access_token(self, token: str) -> Principal:
        claims = self.signer.decode(token, ACCESS)
        state = await self._session_state(claims["sid"])
        if state is None or state["u"] != claims["sub"] or state["o"] != claims.get("org"):
            raise InvalidToken("The session has ended.")
        return principal_from_session_state(claims["sid"], state, "token")

    async def from_session_cookie(self, cookie: str) -> Principal:
        digest = token_digest(cookie)
        async with self.sessionmaker() as db:
            session_id = (
                await db.execute(
                    across_tenants(
                        select(AuthSession.id).where(AuthSession.cookie_hash == digest),
                        "finding the session of a console cookie",
                    )
                )
            ).scalar_one_or_none()
        if session_id is None:
            raise InvalidToken("The session has ended.")
        state = await self._session_state(str(session_id))
        if state is None:
            raise InvalidToken("The session has ended.")
        return principal_from_session_state(str(session_id), state, "cookie")

    async def from_api_key(self, value: str, client_address: str | None) -> Principal:
        parts = parse_api_key(value)
        if parts is None:
            raise InvalidToken("The API key is not valid.")
        state = await self._api_key_state(parts.key_id)
        if state is None or not digests_equal(
            keyed_digest(self.api_key_pepper, parts.secret), state["h"]
        ):
            raise InvalidToken("The API key is not valid.")
        if state["exp"] is not None and state["exp"] <= time.time():
            raise InvalidToken("The API key has expired.")
        if state["c"] and not address_allowed(client_address, state["c"]):
            raise InvalidToken("The API key is not valid from this address.")
        await self._touch_api_key(parts.key_id, client_address)
        return OrgPrincipal(
            kind="api_key",
            id=uuid.UUID(state["id"]),
            org_id=uuid.UUID(state["o"]),
            permissions=frozenset(state["p"]),
            key_id=parts.key_id,
            auth_method="api_key",
            extra={"signing_required": "1"} if state.get("sr") else {},
        )

    async def signing_secret_ciphertext(self, key_id: str) -> bytes | None:
        """The sealed signing secret of an active key, or None (no secret, or revoked)."""
        state = await self._api_key_state(key_id)
        if state is None or not state.get("ss"):
            return None
        return base64.b64decode(state["ss"])

    # --- revocation ------------------------------------------------------------------
    #
    # Each of these takes the session whose transaction makes the change, and pushes
    # into the cache only once that transaction commits (before the commit returns): a
    # rolled-back change revokes nothing, and no request after the answer sees the old
    # state.

    def revoke_sessions(self, db: AsyncSession, session_ids: Iterable[uuid.UUID]) -> None:
        """Refuse these sessions everywhere once `db` commits."""
        keys = [session_cache_key(s) for s in session_ids]
        self._on_commit(db, keys, _REVOKED, self._marker_ttl)

    def forget_sessions(self, db: AsyncSession, session_ids: Iterable[uuid.UUID]) -> None:
        """Make these sessions' next request reload their state (after a role change)."""
        keys = [session_cache_key(s) for s in session_ids]
        self._on_commit(db, keys, _STALE, self._stale_ttl)

    def revoke_api_keys(self, db: AsyncSession, key_ids: Iterable[str]) -> None:
        """Refuse these API keys everywhere once `db` commits."""
        keys = [api_key_cache_key(k) for k in key_ids]
        self._on_commit(db, keys, _REVOKED, self._marker_ttl)

    def forget_api_keys(self, db: AsyncSession, key_ids: Iterable[str]) -> None:
        """Make these keys' next request reload their state (an organisation resumed)."""
        keys = [api_key_cache_key(k) for k in key_ids]
        self._on_commit(db, keys, _STALE, self._stale_ttl)

    def _on_commit(self, db: AsyncSession, keys: list[str], value: bytes, ttl: float) -> None:
        if not keys:
            return
        cache = self.cache

        async def push() -> None:
            for key in keys:
                try:
                    await cache.set(key, value, ttl)
                except CACHE_ERRORS as exc:
                    # Committed in the database, which this and every process reads while
                    # the cache is down; a process still reaching the cache holds the old
                    # state at most `auth_state_cache_seconds`.
                    self.cache_failed("revoke", exc)

        after_commit_await(db, push)

    def cache_failed(self, operation: str, exc: BaseException) -> None:
        """Count a failed cache call, skip the cache for a moment, log now and then."""
        AUTH_CACHE_ERRORS.labels(operation).inc()
        now = time.monotonic()
        self._cache_resume_at = now + CACHE_RETRY_SECONDS
        # An outage under load would flood the log: one line per interval, with the
        # number of failures not logged since the last one.
        if now < self._next_error_log_at:
            self._unlogged_errors += 1
            return
        log.warning(
            "auth_cache_unavailable",
            backend=self.cache.backend,
            operation=operation,
            error=type(exc).__name__,
            detail=str(exc)[:200],
            unlogged_errors=self._unlogged_errors,
        )
        self._next_error_log_at = now + CACHE_ERROR_LOG_INTERVAL_SECONDS
        self._unlogged_errors = 0

    def _cache_paused(self) -> bool:
        if not self._cache_resume_at:
            return False
        if time.monotonic() < self._cache_resume_at:
            return True
        self._cache_resume_at = 0.0
        return False

    # --- cached state ----------------------------------------------------------------

    async def _cached(self, key: str) -> dict[str, Any] | bool | None:
        if self._cache_resume_at and self._cache_paused():
            return False
        try:
            raw = await self.cache.get(key)
        except CACHE_ERRORS as exc:
            self.cache_failed("read", exc)
            return False  # the database decides
        if raw is None or raw == _STALE:
            return False  # not cached, or must be reloaded
        state: dict[str, Any] = json.loads(raw)
        return None if state.get("revoked") else state

    async def _store(self, key: str, state: dict[str, Any] | None) -> None:
        """Cache a freshly loaded state without ever replacing a newer marker."""
        if self._state_ttl <= 0 or self._cache_paused():
            return
        try:
            if state is None:
                # Refusing is always safe to write over whatever is there.
                await self.cache.set(key, _REVOKED, self._state_ttl)
                return
            # SET NX: if a revocation (or a role change) landed while this load read the
            # database, its marker stays and this possibly stale state is not cached.
            await self.cache.set_if_absent(key, json.dumps(state).encode(), self._state_ttl)
        except CACHE_ERRORS as exc:
            self.cache_failed("store", exc)

    async def _session_state(self, session_id: str) -> dict[str, Any] | None:
        key = session_cache_key(session_id)
        cached = await self._cached(key)
        if cached is not False:
            return cached  # type: ignore[return-value]
        state = await self._load_session_state(uuid.UUID(session_id))
        await self._store(key, state)
        return state

    async def _load_session_state(self, session_id: uuid.UUID) -> dict[str, Any] | None:
        now = datetime.now(UTC)
        idle = timedelta(minutes=self.settings.session_idle_timeout_minutes)
        async with self.sessionmaker() as db:
            row = (
                await db.execute(
                    across_tenants(
                        select(AuthSession, User, Organisation)
                        .join(User, User.id == AuthSession.user_id)
                        .outerjoin(Organisation, Organisation.id == AuthSession.org_id)
                        .where(AuthSession.id == session_id),
                        "checking the session of an authenticating user",
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            session, user, org = row
            if (
                session.revoked_at is not None
                or session.expires_at <= now
                or session.last_seen_at + idle <= now
                or user.status != "active"
                or (org is not None and org.status != "active")
                or (org is None and not user.is_platform_admin)
            ):
                return None
            if org is None:
                return session_state(user, None, frozenset(), session.scope)
            membership = (
                await db.execute(
                    across_tenants(
                        select(Membership.role).where(
                            Membership.org_id == org.id, Membership.user_id == user.id
                        ),
                        "checking the membership of an authenticating user",
                    )
                )
            ).scalar_one_or_none()
            if membership is None and not user.is_platform_admin:
                return None
            permissions = (
                await role_permissions(db, org.id, membership) if membership else frozenset()
            )
            if session.last_seen_at + timedelta(seconds=_LAST_USED_EVERY_SECONDS) <= now:
                await db.execute(
                    across_tenants(
                        update(AuthSession)
                        .where(AuthSession.id == session_id)
                        .values(last_seen_at=now),
                        "recording session activity",
                    )
                )
                await db.commit()
        return session_state(user, org.id, permissions, session.scope)

    async def _api_key_state(self, key_id: str) -> dict[str, Any] | None:
        key = api_key_cache_key(key_id)
        cached = await self._cached(key)
        if cached is not False:
            return cached  # type: ignore[return-value]
        async with self.sessionmaker() as db:
            row = (
                await db.execute(
                    across_tenants(
                        select(ApiKey, Organisation.status)
                        .join(Organisation, Organisation.id == ApiKey.org_id)
                        .where(ApiKey.key_id == key_id),
                        "checking an API key",
                    )
                )
            ).one_or_none()
        state: dict[str, Any] | None = None
        if row is not None:
            api_key, org_status = row
            if api_key.revoked_at is None and org_status == "active":
                state = {
                    "id": str(api_key.id),
                    "o": str(api_key.org_id),
                    "h": api_key.secret_hash,
                    "p": sorted(api_key.scopes),
                    "exp": api_key.expires_at.timestamp() if api_key.expires_at else None,
                    "c": api_key.allowed_cidrs,
                    "sr": api_key.signing_required,
                    # Still AES-GCM sealed: the cache never holds the secret in clear.
                    "ss": (
                        base64.b64encode(api_key.signing_secret_encrypted).decode()
                        if api_key.signing_secret_encrypted
                        else None
                    ),
                }
        await self._store(key, state)
        return state

    async def _touch_api_key(self, key_id: str, client_address: str | None) -> None:
        # Throttled: at most one write per key per minute per process.
        now = time.monotonic()
        if now - self._last_used_written.get(key_id, -1e9) < _LAST_USED_EVERY_SECONDS:
            return
        self._last_used_written[key_id] = now
        async with self.sessionmaker() as db:
            await db.execute(
                across_tenants(
                    update(ApiKey)
                    .where(ApiKey.key_id == key_id)
                    .values(last_used_at=datetime.now(UTC), last_used_address=client_address),
                    "recording API key use",
                )
            )
            await db.commit()
