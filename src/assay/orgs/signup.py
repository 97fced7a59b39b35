"""Password reset, email verification, email change and self sign-up, by emailed links."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts import service as accounts
from assay.accounts.models import User
from assay.accounts.service import user_actor
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.auth.deps import IdentityContext
from assay.auth.service import (
    check_new_password,
    find_user_by_email,
    normalise_email,
    send_verification,
)
from assay.core.errors import NotFound
from assay.core.permissions import OWNER_ROLE
from assay.email_links import service as email_links
from assay.email_links.service import queue_mail
from assay.orgs import service as orgs
from assay.orgs.models import Organisation


class SignupDisabled(NotFound):
    def __init__(self) -> None:
        super().__init__("Self sign-up is not enabled on this server.")


async def _free_slug(db: AsyncSession, name: str) -> str:
    slug = orgs.slugify(name)
    taken = await db.execute(select(Organisation.id).where(Organisation.slug == slug))
    if taken.first() is None:
        return slug
    # Another organisation has the name: a suffix, rather than an error that would
    # tell a stranger which organisations exist.
    return f"{slug[:54]}-{secrets.token_hex(4)}"


async def sign_up(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    *,
    email: str,
    password: str,
    display_name: str,
    organisation_name: str,
) -> None:
    """Create an unverified user owning a new organisation, and mail a verification link.

    An address that already has an account gets a mail saying so, and the caller gets
    the same answer as for a new one: sign-up cannot be used to find accounts.
    """
    if not identity.settings.signup_enabled:
        raise SignupDisabled
    address = normalise_email(email)
    # The policy is judged before the address is looked up, so its answer cannot
    # depend on whether an account exists.
    candidate = User(email=address, display_name=display_name)
    await check_new_password(
        db, identity, candidate, password, field="password", extra_context=[organisation_name]
    )
    existing = await find_user_by_email(db, address)
    if existing is not None:
        # The hash a new account would cost, so both answers take as long.
        await identity.passwords.hash(password)
        if existing.email_verified_at is None and existing.status == "active":
            await send_verification(db, identity, meta, existing, throttle=True)
        else:
            queue_mail(
                db,
                identity.mail,
                email_links.signup_for_existing_account(identity.settings, existing.email),
            )
        record_event(
            db,
            meta,
            action=SecurityAction.USER_SIGNED_UP,
            outcome="failure",
            target_kind="user",
            target_id=existing.id,
            details={"reason": "existing_account"},
        )
        return
    user = await accounts.create_user(
        db,
        identity,
        email=address,
        password=password,
        display_name=display_name,
        verified=False,
        check_policy=False,  # checked above
    )
    actor = user_actor(user)
    org = await orgs.create_organisation(
        db, meta, actor, name=organisation_name, slug=await _free_slug(db, organisation_name)
    )
    await orgs.add_member(db, meta, actor, org.id, user, OWNER_ROLE)
    record_event(
        db,
        meta,
        action=SecurityAction.USER_SIGNED_UP,
        actor=actor,
        org_id=org.id,
        target_kind="user",
        target_id=user.id,
    )
    await send_verification(db, identity, meta, user, throttle=False)
