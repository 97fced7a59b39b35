"""The one hierarchy rule inside an organisation: nobody grants, or acts on, more than
they hold.

- Granting: a custom role, an API key's scopes, an invitation's role and a member's new
  role may hold only permissions the caller holds (`check_grantable`: 422 naming them).
- Acting on a member: changing their role, removing or unlocking them, ending one of
  their sessions, revoking a key they made. It needs every permission of that member's
  role (`require_authority_over`: 403). So an admin cannot act on an owner, and nobody
  on a member whose custom role holds something they lack.

docs/security.md ("Roles and permissions") states the same rule; tests/orgs/
test_hierarchy.py walks every path above.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from assay.auth.principal_state import role_permissions
from assay.core.errors import Forbidden, ValidationFailed
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import scoped
from assay.orgs.models import Membership


def check_grantable(
    principal: OrgPrincipal,
    permissions: Iterable[str],
    *,
    field: str,
    code: str,
    detail: str,
) -> None:
    """Refuse (422) to hand out any permission the caller does not hold."""
    beyond = sorted(set(permissions) - principal.permissions)
    if beyond:
        raise ValidationFailed(
            detail,
            errors=[
                {"field": field, "code": code, "message": f"not held by you: {', '.join(beyond)}"}
            ],
        )


async def member_role(db: AsyncSession, principal: OrgPrincipal, user_id: uuid.UUID) -> str | None:
    """The role of `user_id` in the principal's organisation, or None if not a member."""
    statement = scoped(principal, Membership).where(Membership.user_id == user_id)
    membership = (await db.execute(statement)).scalar_one_or_none()
    return membership.role if membership is not None else None


async def require_authority_over(
    db: AsyncSession,
    principal: OrgPrincipal,
    user_id: uuid.UUID | None,
    what: str,
    *,
    role: str | None = None,
) -> None:
    """Refuse (403) unless the principal holds every permission of the member's role.

    `role` saves the lookup when the caller has the membership already. Someone who is
    no longer a member holds nothing here, so anyone may clean up after them.
    """
    if user_id is None or user_id == principal.id:
        return  # acting on oneself, or on what no member owns (a key whose creator is gone)
    role = role if role is not None else await member_role(db, principal, user_id)
    if role is None:
        return
    if not await role_permissions(db, principal.org_id, role) <= principal.permissions:
        raise Forbidden(
            f"You cannot {what} a member whose role ('{role}') has permissions you do not have."
        )
