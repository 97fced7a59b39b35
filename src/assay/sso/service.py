"""Single sign-on with OpenID Connect: starting, finishing, and who the person is here.

The state, nonce and PKCE verifier of a started sign-in live in the shared cache,
under a hash of the state, for `sso_state_ttl_seconds`, and are usable once. They are
bound to the browser that started the sign-in by a short-lived HttpOnly cookie whose
hash is stored with them, so a state lifted from a URL is useless in another browser.

Users are keyed on (issuer, subject). The sign-in itself then goes through the same
code as password login, so MFA and organisation rules apply unchanged.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts.models import User
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.auth.deps import IdentityContext
from assay.auth.service import (
    MfaChallenge,
    TokenPair,
    choose_org,
    find_user_by_email,
    finish_sign_in,
    normalise_email,
)
from assay.core.crypto import new_opaque_token, token_digest
from assay.core.errors import DependencyUnavailable, NotFound, Unauthorized
from assay.core.logging import get_logger
from assay.core.permissions import BUILTIN_ROLES
from assay.core.principal import PLATFORM
from assay.orgs import service as orgs
from assay.orgs.models import Organisation
from assay.settings import OidcProvider, Settings
from assay.sso.models import UserIdentity
from assay.sso.oidc import OidcClient, OidcError, new_pkce

log = get_logger("assay.sso")

_STATE_PREFIX = "sso:state:"
_CLAIMED_PREFIX = "sso:claimed:"
SessionMode = Literal["token", "console"]


class SsoSignInFailed(Unauthorized):
    """One answer for every refused single sign-on; the reason is in the log."""

    slug = "sso-sign-in-failed"
    title = "Sign-in failed"
    # The failure's security event must survive the refusal.
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__("Single sign-on did not succeed; start again from the sign-in page.")


class SsoProviderUnavailable(DependencyUnavailable):
    slug = "sso-provider-unavailable"
    title = "Identity provider unavailable"
    keeps_writes = True

    def __init__(self) -> None:
        super().__init__("The identity provider cannot be reached; try again later.")


class UnknownSsoProvider(NotFound):
    def __init__(self) -> None:
        super().__init__("No such sign-in provider.")


@dataclass(frozen=True, slots=True)
class SsoStart:
    """Where to send the browser, and the cookie that binds the sign-in to it."""

    location: str
    binding: str
    max_age: int


@dataclass(frozen=True, slots=True)
class SsoOutcome:
    result: TokenPair | MfaChallenge
    # The new console session's cookie value, when the sign-in asked for one.
    console_cookie: str | None


class _Refused(OidcError):
    """A refusal once the person is known, so the event can name them."""

    def __init__(self, reason: str, user: User) -> None:
        super().__init__(reason)
        self.user_id = user.id


def find_provider(settings: Settings, name: str) -> OidcProvider:
    for provider in settings.oidc_providers:
        if provider.name == name:
            return provider
    raise UnknownSsoProvider


def redirect_uri(settings: Settings, provider: OidcProvider) -> str:
    return f"{settings.public_url.rstrip('/')}/v1/auth/sso/{provider.name}/callback"


def _failure(
    db: AsyncSession, meta: RequestMeta, provider: OidcProvider, exc: OidcError, stage: str
) -> None:
    user_id = exc.user_id if isinstance(exc, _Refused) else None
    log.warning(
        "sso_sign_in_failed", provider=provider.name, stage=stage, reason=exc.reason, **exc.details
    )
    record_event(
        db,
        meta,
        action=SecurityAction.LOGIN_SSO,
        outcome="failure",
        actor_kind="user" if user_id else None,
        actor_id=user_id,
        details={"provider": provider.name, "stage": stage, "reason": exc.reason, **exc.details},
    )


async def begin(
    db: AsyncSession,
    identity: IdentityContext,
    oidc: OidcClient,
    meta: RequestMeta,
    provider_name: str,
    *,
    session_mode: SessionMode,
) -> SsoStart:
    """Remember a new state, nonce and PKCE verifier; say where to send the browser."""
    settings = identity.settings
    provider = find_provider(settings, provider_name)
    try:
        metadata = await oidc.metadata(provider)
    except OidcError as exc:
        _failure(db, meta, provider, exc, "start")
        raise SsoProviderUnavailable from None
    state, nonce, binding = new_opaque_token(), new_opaque_token(), new_opaque_token()
    pkce = new_pkce()
    record = {
        "provider": provider.name,
        "nonce": nonce,
        "verifier": pkce.verifier,
        "binding": token_digest(binding),
        "session": session_mode,
    }
    ttl = settings.sso_state_ttl_seconds
    await identity.cache.set(
        _STATE_PREFIX + token_digest(state), json.dumps(record).encode(), ttl_seconds=ttl
    )
    location = oidc.authorization_url(
        provider,
        metadata,
        redirect_uri=redirect_uri(settings, provider),
        state=state,
        nonce=nonce,
        code_challenge=pkce.challenge,
    )
    return SsoStart(location=location, binding=binding, max_age=ttl)


async def complete(
    db: AsyncSession,
    identity: IdentityContext,
    oidc: OidcClient,
    meta: RequestMeta,
    provider_name: str,
    *,
    code: str | None,
    state: str | None,
    binding: str | None,
    provider_error: str | None,
) -> SsoOutcome:
    """Check the callback, exchange the code, verify the ID token, and sign the user in."""
    provider = find_provider(identity.settings, provider_name)
    try:
        return await _complete(
            db,
            identity,
            oidc,
            meta,
            provider,
            code=code,
            state=state,
            binding=binding,
            provider_error=provider_error,
        )
    except OidcError as exc:
        _failure(db, meta, provider, exc, "callback")
        raise SsoSignInFailed from None


async def _take_state(identity: IdentityContext, state: str) -> dict[str, Any]:
    key = _STATE_PREFIX + token_digest(state)
    raw = await identity.cache.get(key)
    if raw is None:
        raise OidcError("state_unknown_or_expired")
    # Claimed atomically before use: of two callbacks racing with one state (two
    # processes, one Redis), exactly one gets past this line.
    claimed = await identity.cache.set_if_absent(
        _CLAIMED_PREFIX + token_digest(state), b"1", identity.settings.sso_state_ttl_seconds
    )
    await identity.cache.delete(key)
    if not claimed:
        raise OidcError("state_reused")
    record: dict[str, Any] = json.loads(raw)
    return record


async def _complete(
    db: AsyncSession,
    identity: IdentityContext,
    oidc: OidcClient,
    meta: RequestMeta,
    provider: OidcProvider,
    *,
    code: str | None,
    state: str | None,
    binding: str | None,
    provider_error: str | None,
) -> SsoOutcome:
    if provider_error:
        raise OidcError("provider_returned_error", error=provider_error[:64])
    if not state or not code:
        raise OidcError("callback_parameters_missing")
    record = await _take_state(identity, state)
    if record.get("provider") != provider.name:
        raise OidcError("state_provider_mismatch")
    if not binding:
        raise OidcError("state_cookie_missing")
    if not hmac.compare_digest(token_digest(binding), str(record.get("binding"))):
        raise OidcError("state_cookie_mismatch")
    id_token = await oidc.exchange_code(
        provider,
        code=code,
        redirect_uri=redirect_uri(identity.settings, provider),
        verifier=str(record["verifier"]),
    )
    claims = await oidc.verify_id_token(provider, id_token, nonce=str(record["nonce"]))
    cookie = new_opaque_token() if record.get("session") == "console" else None
    result = await _sign_in(db, identity, meta, provider, claims, cookie)
    return SsoOutcome(result=result, console_cookie=cookie)


def _verified_email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    # Some providers send the flag as a string; anything else is "not verified".
    verified = claims.get("email_verified") in (True, "true")
    if not verified or not isinstance(email, str) or "@" not in email or len(email) > 320:
        return None
    return normalise_email(email)


def _domain_allowed(provider: OidcProvider, email: str) -> bool:
    if not provider.allowed_domains:
        return True
    return email.rpartition("@")[2] in provider.allowed_domains


def _check_active(user: User) -> None:
    # A timed password lock does not stop SSO (the password is not used); an account
    # disabled or locked by an administrator does.
    if user.status != "active" or user.hard_locked:
        raise _Refused("account_inactive", user)


async def _linked_user(db: AsyncSession, issuer: str, subject: str) -> User | None:
    link = (
        await db.execute(
            select(UserIdentity).where(
                UserIdentity.issuer == issuer, UserIdentity.subject == subject
            )
        )
    ).scalar_one_or_none()
    return await db.get(User, link.user_id) if link is not None else None


async def _provider_org(db: AsyncSession, provider: OidcProvider) -> Organisation:
    org = (
        await db.execute(
            select(Organisation).where(
                Organisation.slug == provider.org, Organisation.deleted_at.is_(None)
            )
        )
    ).scalar_one_or_none()
    if org is None or org.status != "active":
        raise OidcError("provider_org_unavailable")
    if provider.role not in BUILTIN_ROLES:
        raise OidcError("provider_role_unknown")
    return org


async def _resolve_user(
    db: AsyncSession, meta: RequestMeta, provider: OidcProvider, claims: dict[str, Any]
) -> tuple[User, str]:
    """The user behind these claims, and how: an existing link, newly linked, or created."""
    subject: str = claims["sub"]
    user = await _linked_user(db, provider.issuer, subject)
    if user is not None:
        _check_active(user)
        return user, "existing"
    email = _verified_email(claims)
    if email is None:
        raise OidcError("email_missing_or_unverified")
    # The allow-list bounds which addresses this provider is believed for, when it
    # links an existing account as much as when it creates one.
    if not _domain_allowed(provider, email):
        raise OidcError("email_domain_not_allowed")
    user = await find_user_by_email(db, email)
    identity_row = UserIdentity(issuer=provider.issuer, subject=subject, email=email)
    if user is not None:
        _check_active(user)
        identity_row.user_id = user.id
        db.add(identity_row)
        record_event(
            db,
            meta,
            action=SecurityAction.SSO_IDENTITY_LINKED,
            actor_kind="user",
            actor_id=user.id,
            target_kind="user",
            target_id=user.id,
            details={"provider": provider.name, "issuer": provider.issuer},
        )
        return user, "linked"
    if not provider.auto_create:
        raise OidcError("no_matching_user")
    org = await _provider_org(db, provider)
    name = claims.get("name")
    user = User(
        email=email,
        display_name=name[:200] if isinstance(name, str) else "",
        # No password: this person signs in through the provider (or sets one by reset).
        password_hash=None,
        email_verified_at=datetime.now(UTC),
    )
    db.add(user)
    await db.flush()
    identity_row.user_id = user.id
    db.add(identity_row)
    await orgs.add_member(db, meta, PLATFORM, org.id, user, provider.role)
    record_event(
        db,
        meta,
        action=SecurityAction.SSO_USER_CREATED,
        actor_kind="user",
        actor_id=user.id,
        org_id=org.id,
        target_kind="user",
        target_id=user.id,
        details={"provider": provider.name, "role": provider.role},
    )
    return user, "created"


async def _sign_in(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    provider: OidcProvider,
    claims: dict[str, Any],
    cookie: str | None,
) -> TokenPair | MfaChallenge:
    user, how = await _resolve_user(db, meta, provider, claims)
    choice = await choose_org(db, user)
    org, role = choice.org, choice.role
    if org is None and not user.is_platform_admin:
        reason = "organisation_inactive" if choice.refusal == "org_inactive" else "no_membership"
        raise _Refused(reason, user)
    record_event(
        db,
        meta,
        action=SecurityAction.LOGIN_SSO,
        actor_kind="user",
        actor_id=user.id,
        org_id=org.id if org else None,
        details={"provider": provider.name, "user": how},
    )
    # The password login's last step: MFA challenge, enrolment-only scope, or tokens.
    return await finish_sign_in(
        db, identity, user, org, role, meta, second_factor_done=False, cookie=cookie
    )
