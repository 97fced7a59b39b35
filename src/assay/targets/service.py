"""The organisation's targets: registering them, their sealed secrets, opening them for a
scan, and a harmless check that one answers.

The credential and the system prompt are write-only: sealed under the keyring, bound to
the organisation, the row and what they are, never returned or logged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.crypto import DecryptionError, Keyring
from assay.core.db_types import utcnow
from assay.core.logging import get_logger
from assay.core.principal import OrgPrincipal
from assay.core.tenancy import scope_statement, scoped
from assay.outbound.errors import DestinationRefused
from assay.outbound.service import parse_destination_url
from assay.targets.client import ReadyTarget, TargetAnswer, TargetClient
from assay.targets.errors import InvalidTarget, TargetNotFound
from assay.targets.models import TargetRow, target_aad
from assay.targets.schemas import TargetSave

log = get_logger("assay.targets")

# What scans use of the client (they reach this package through its service).
__all__ = ["ReadyTarget", "TargetAnswer", "TargetClient", "TargetRegistry"]

CHECK_PROMPT = "Reply with the single word: ready."


def _aad(row: TargetRow, what: str) -> bytes:
    return target_aad(row.org_id, row.id, row.name, what)


class TargetRegistry:
    def __init__(self, keyring: Keyring, client: TargetClient) -> None:
        self.keyring = keyring
        self.client = client

    async def list(self, db: AsyncSession, principal: OrgPrincipal) -> Sequence[TargetRow]:
        statement = scoped(principal, TargetRow).order_by(TargetRow.name)
        return (await db.scalars(statement)).all()

    async def get(self, db: AsyncSession, principal: OrgPrincipal, name: str) -> TargetRow:
        row = await db.scalar(scoped(principal, TargetRow).where(TargetRow.name == name))
        if row is None:
            raise TargetNotFound(f"No target {name!r} in this organisation.")
        return row

    async def get_by_id(
        self, db: AsyncSession, principal: OrgPrincipal, target_id: uuid.UUID
    ) -> TargetRow | None:
        return await db.scalar(scoped(principal, TargetRow).where(TargetRow.id == target_id))

    def _check_url(self, url: str) -> None:
        try:
            # The shape here; the address is checked (and pinned) at every request.
            parse_destination_url(url, allow_http=self.client.outbound.policy.allow_http)
        except DestinationRefused as exc:
            raise InvalidTarget(
                f"The URL cannot be used: {exc.detail}.",
                errors=[{"field": "url", "code": exc.reason, "message": exc.detail}],
            ) from None

    async def save(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        name: str,
        body: TargetSave,
        *,
        meta: RequestMeta,
    ) -> TargetRow:
        """Register or replace the target `name`; its credential is kept, and so is its
        system prompt unless `body` sets one ("" clears it)."""
        self._check_url(body.url)
        row = await db.scalar(scoped(principal, TargetRow).where(TargetRow.name == name))
        if row is None:
            row = TargetRow(
                id=uuid.uuid4(), org_id=principal.org_id, name=name, created_by=principal.actor_id
            )
            db.add(row)
        row.kind = body.kind
        row.url = body.url
        row.description = body.description
        row.model = body.model
        row.temperature = body.temperature
        row.rest = body.rest.model_dump() if body.rest is not None else None
        row.credential_header = body.credential_header
        row.credential_scheme = body.credential_scheme
        row.requests_per_minute = body.requests_per_minute
        row.concurrency = body.concurrency
        row.timeout_seconds = body.timeout_seconds
        row.max_retries = body.max_retries
        if body.kind == "rest":
            row.system_prompt_encrypted = None
        elif body.system_prompt is not None:
            row.system_prompt_encrypted = (
                self.keyring.encrypt(body.system_prompt.encode(), _aad(row, "system prompt"))
                if body.system_prompt
                else None
            )
        row.updated_at = utcnow()
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.TARGET_SAVED,
            actor=principal,
            target_kind="target",
            target_id=row.id,
            details={"name": name, "kind": body.kind, "url": body.url},
        )
        return row

    async def set_credential(
        self,
        db: AsyncSession,
        principal: OrgPrincipal,
        name: str,
        credential: str | None,
        *,
        meta: RequestMeta,
    ) -> None:
        row = await self.get(db, principal, name)
        row.credential_encrypted = (
            None
            if credential is None
            else self.keyring.encrypt(credential.encode(), _aad(row, "credential"))
        )
        row.updated_at = utcnow()
        await db.flush()
        record_event(
            db,
            meta,
            action=SecurityAction.TARGET_CREDENTIAL_SET,
            actor=principal,
            target_kind="target",
            target_id=row.id,
            details={"name": name, "cleared": credential is None},
        )

    async def delete(
        self, db: AsyncSession, principal: OrgPrincipal, name: str, *, meta: RequestMeta
    ) -> None:
        row = await self.get(db, principal, name)
        await db.execute(
            scope_statement(principal, delete(TargetRow).where(TargetRow.id == row.id), TargetRow)
        )
        record_event(
            db,
            meta,
            action=SecurityAction.TARGET_DELETED,
            actor=principal,
            target_kind="target",
            target_id=row.id,
            details={"name": name},
        )

    def _open(self, row: TargetRow, sealed: bytes | None, what: str) -> str | None:
        if sealed is None:
            return None
        try:
            return self.keyring.decrypt(sealed, _aad(row, what)).decode()
        except DecryptionError:
            log.warning("target_secret_unreadable", target=row.name, what=what)
            return None

    def ready(self, row: TargetRow) -> ReadyTarget:
        return ReadyTarget(
            org_id=row.org_id,
            name=row.name,
            kind=row.kind,
            url=row.url,
            model=row.model,
            temperature=row.temperature,
            rest=row.rest,
            credential=self._open(row, row.credential_encrypted, "credential"),
            credential_header=row.credential_header,
            credential_scheme=row.credential_scheme,
            system_prompt=self._open(row, row.system_prompt_encrypted, "system prompt"),
            requests_per_minute=row.requests_per_minute,
            concurrency=row.concurrency,
            timeout_seconds=row.timeout_seconds,
            max_retries=row.max_retries,
        )

    async def check(self, db: AsyncSession, principal: OrgPrincipal, name: str) -> TargetAnswer:
        """Send one harmless prompt (with the owner's system prompt) and say what came back."""
        target = self.ready(await self.get(db, principal, name))
        deadline = time.monotonic() + target.timeout_seconds * (1 + target.max_retries)
        return await self.client.send(
            target, CHECK_PROMPT, system=target.system_prompt, deadline=deadline
        )
