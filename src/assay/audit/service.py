"""Security events: written in the same transaction as the change they describe."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

from fastapi import Request
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.models import SecurityAction, SecurityEvent
from assay.core.errors import AssayError
from assay.core.logging import get_logger
from assay.core.principal import Principal

SECURITY_EVENTS = Counter(
    "assay_security_events",
    "Security events written, by action and outcome.",
    ["action", "outcome"],
)
log = get_logger("assay.security")


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """Where a change came from."""

    client_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, request: Request) -> RequestMeta:
        state = request.scope.get("state") or {}
        agent = request.headers.get("user-agent")
        return cls(
            client_address=state.get("client_address"),
            user_agent=agent[:300] if agent else None,
            request_id=state.get("request_id"),
        )


CLI = RequestMeta(user_agent="assay-cli")


def record_event(
    db: AsyncSession,
    meta: RequestMeta,
    *,
    action: SecurityAction,
    outcome: str = "success",
    actor: Principal | None = None,
    actor_kind: str | None = None,
    actor_id: uuid.UUID | str | None = None,
    org_id: uuid.UUID | None = None,
    target_kind: str | None = None,
    target_id: uuid.UUID | str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    kind = actor.kind if actor else (actor_kind or "anonymous")
    who = actor.actor_id if actor else (str(actor_id) if actor_id else None)
    where_org = org_id if org_id is not None else (actor.org_id if actor else None)
    db.add(
        SecurityEvent(
            org_id=where_org,
            actor_kind=kind,
            actor_id=who,
            action=action,
            target_kind=target_kind,
            target_id=str(target_id) if target_id else None,
            outcome=outcome,
            client_address=meta.client_address,
            user_agent=meta.user_agent,
            request_id=meta.request_id,
            details=details or {},
        )
    )
    SECURITY_EVENTS.labels(action, outcome).inc()
    log.info(
        "security_event",
        action=action,
        outcome=outcome,
        actor_kind=kind,
        actor=who,
        org=str(where_org) if where_org else None,
        target=str(target_id) if target_id else None,
    )


def refuse(
    db: AsyncSession,
    meta: RequestMeta,
    error: AssayError,
    *,
    action: SecurityAction,
    actor: Principal | None = None,
    actor_kind: str | None = None,
    actor_id: uuid.UUID | str | None = None,
    org_id: uuid.UUID | None = None,
    target_kind: str | None = None,
    target_id: uuid.UUID | str | None = None,
    details: dict[str, Any] | None = None,
) -> NoReturn:
    """Record the failed attempt as a security event, then raise `error`.

    The error's class says whether the event survives the refusal (`keeps_writes`);
    refusals that are evidence (wrong passwords, replayed tokens) keep it.
    """
    record_event(
        db,
        meta,
        action=action,
        outcome="failure",
        actor=actor,
        actor_kind=actor_kind,
        actor_id=actor_id,
        org_id=org_id,
        target_kind=target_kind,
        target_id=target_id,
        details=details,
    )
    raise error
