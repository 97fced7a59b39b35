"""Invitations: an organisation admin offers a role to an email address.

An invitation is an `EmailToken` with purpose "invite", the organisation and the role.
It is not a tenant-owned table (reset and verification tokens belong to no
organisation; see `ORG_LINKED_TABLES`), so every query here starts from
`_invitations_of`, which reads them through `scoped()`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from assay.accounts import service as accounts
from assay.accounts.models import User
from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event, refuse
from assay.auth.deps import IdentityContext
from assay.auth.errors import InvalidCredentials
from assay.auth.service import (
    check_grantable,
    count_failure,
    find_user_by_email,
    is_locked,
    normalise_email,
    register_success,
)
from assay.core.errors import Conflict, NotFound
from assay.core.permissions import BUILTIN_ROLES
from assay.core.principal import OrgPrincipal, Principal
from assay.core.tenancy import HasOrganisation, scoped
from assay.email_links import service as email_links
from assay.email_links.errors import InvalidEmailToken
from assay.email_links.models import EmailToken
from assay.email_links.service import INVITE, queue_mail
from assay.orgs import members
from assay.orgs import service as orgs
from assay.orgs.models import CustomRole, Membership, Organisation


@dataclass(frozen=True, slots=True)
class _InOrganisation:
    """Scopes queries to an organisation before anyone in it is known."""

    org_id: uuid.UUID


def _invitations_of(principal: OrgPrincipal) -> Select[EmailToken]:
    return scoped(principal, EmailToken).where(EmailToken.purpose == INVITE)


async def _is_member(db: AsyncSession, member_of: HasOrganisation, email: str) -> bool:
    statement = (
        scoped(member_of, Membership)
        .join(User, User.id == Membership.user_id)
        .where(User.email == email)
    )
    return (await db.execute(statement)).first() is not None


async def create_invitation(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    principal: OrgPrincipal,
    *,
    email: str,
    role: str,
) -> EmailToken:
    """Invite `email` with `role` (no more than the inviter holds); mails the link."""
    org = await orgs.get_organisation(db, principal.org_id)
    granted = await members.permissions_of_role(db, principal, role)
    check_grantable(
        principal,
        granted,
        field="role",
        code="role_exceeds_yours",
        detail="You cannot offer a role with permissions you do not have.",
    )
    return await invite(db, identity, meta, principal, org, email=email, role=role)


async def invite(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    actor: Principal,
    org: Organisation,
    *,
    email: str,
    role: str,
) -> EmailToken:
    """Issue and mail an invitation to `org`; the caller has checked `actor` may offer `role`."""
    address = normalise_email(email)
    if await _is_member(db, _InOrganisation(org.id), address):
        raise Conflict("That address already belongs to a member of this organisation.")
    issued = await email_links.issue(
        db,
        purpose=INVITE,
        email=address,
        org_id=org.id,
        role=role,
        ttl=timedelta(days=identity.settings.invitation_ttl_days),
    )
    existing_account = await find_user_by_email(db, address) is not None
    record_event(
        db,
        meta,
        action=SecurityAction.INVITATION_CREATED,
        actor=actor,
        org_id=org.id,
        target_kind="invitation",
        target_id=issued.record.id,
        details={"email": address, "role": role},
    )
    queue_mail(
        db,
        identity.mail,
        email_links.invitation(
            identity.settings,
            address,
            issued.token,
            organisation=org.name,
            role=role,
            existing_account=existing_account,
        ),
    )
    return issued.record


async def list_invitations(db: AsyncSession, principal: OrgPrincipal) -> list[EmailToken]:
    """Pending invitations of the caller's organisation, newest first."""
    now = datetime.now(UTC)
    statement = (
        _invitations_of(principal)
        .where(EmailToken.used_at.is_(None), EmailToken.expires_at > now)
        .order_by(EmailToken.created_at.desc())
    )
    return list((await db.execute(statement)).scalars())


async def revoke_invitation(
    db: AsyncSession, meta: RequestMeta, principal: OrgPrincipal, invitation_id: uuid.UUID
) -> None:
    now = datetime.now(UTC)
    invitation = (
        await db.execute(_invitations_of(principal).where(EmailToken.id == invitation_id))
    ).scalar_one_or_none()
    if invitation is None or email_links.refusal(invitation, now) is not None:
        raise NotFound("No such pending invitation.")
    if not await email_links.claim(db, invitation, now):
        raise NotFound("No such pending invitation.")
    record_event(
        db,
        meta,
        action=SecurityAction.INVITATION_REVOKED,
        actor=principal,
        target_kind="invitation",
        target_id=invitation.id,
        details={"email": invitation.email, "role": invitation.role},
    )


async def _role_exists(db: AsyncSession, in_org: HasOrganisation, role: str) -> bool:
    if role in BUILTIN_ROLES:
        return True
    custom = await db.execute(scoped(in_org, CustomRole).where(CustomRole.name == role))
    return custom.first() is not None


async def _existing_user_consents(
    db: AsyncSession, identity: IdentityContext, meta: RequestMeta, user: User, password: str
) -> None:
    """The invited address has an account: its current password must be given.

    Counted like a sign-in, so an invitation link is no way around the lockout.
    """
    now = datetime.now(UTC)
    password_ok = await identity.passwords.verify(user.password_hash, password)
    refused = is_locked(user, now) or user.status != "active"
    if refused or not password_ok:
        if not refused:
            await count_failure(db, meta, user, "password", identity.settings, now)
        refuse(
            db,
            meta,
            InvalidCredentials(),
            action=SecurityAction.INVITATION_ACCEPTED,
            actor_kind="user",
            actor_id=user.id,
            details={"reason": "password"},
        )
    register_success(user, "password")


async def accept_invitation(
    db: AsyncSession,
    identity: IdentityContext,
    meta: RequestMeta,
    *,
    token: str,
    password: str,
    display_name: str,
) -> tuple[Organisation, str]:
    """Join the organisation; creates the account (with `password`) if the address has none.

    Returns the organisation and the role granted.
    """
    now = datetime.now(UTC)
    record = await email_links.find(db, INVITE, token)
    org = await db.get(Organisation, record.org_id) if record and record.org_id else None
    reason = email_links.refusal(record, now)
    if (
        record is not None
        and reason is None
        and (org is None or org.deleted_at is not None or org.status != "active" or not record.role)
    ):
        reason = "organisation_inactive"
    if reason is not None or record is None or org is None or record.role is None:
        refuse(
            db,
            meta,
            InvalidEmailToken(),
            action=SecurityAction.INVITATION_ACCEPTED,
            org_id=org.id if org else None,
            details={"reason": reason},
        )
    if not await _role_exists(db, _InOrganisation(org.id), record.role):
        raise Conflict("The role offered no longer exists; ask for a new invitation.")

    user = await find_user_by_email(db, record.email)
    if user is None:
        user = await accounts.create_user(
            db,
            identity,
            email=record.email,
            password=password,
            display_name=display_name,
            verified=True,  # the link reached this mailbox
            extra_context=[org.name, org.slug],
        )
        record_event(
            db,
            meta,
            action=SecurityAction.USER_CREATED,
            actor_kind="user",
            actor_id=user.id,
            org_id=org.id,
            target_kind="user",
            target_id=user.id,
            details={"via": "invitation"},
        )
    else:
        await _existing_user_consents(db, identity, meta, user, password)
        if user.email_verified_at is None:
            user.email_verified_at = now
    actor = OrgPrincipal(kind="user", id=user.id, org_id=org.id, permissions=frozenset())
    if await _is_member(db, actor, user.email):
        raise Conflict("You are already a member of this organisation.")
    if not await email_links.claim(db, record, now):
        raise InvalidEmailToken
    await orgs.add_member(db, meta, actor, org.id, user, record.role)
    record_event(
        db,
        meta,
        action=SecurityAction.INVITATION_ACCEPTED,
        actor=actor,
        target_kind="invitation",
        target_id=record.id,
        details={"role": record.role},
    )
    return org, record.role
