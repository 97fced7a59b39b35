"""The data-key lifecycle: status, rotation, retirement (ADR 0024).

Rotating makes a new random data key active (the previous one decrypts only) and asks
for a re-encryption run; retiring erases a decrypt-only key's material, refused while
any value is still sealed with it. Each change is a security event of the platform,
written in the transaction of the change. No answer, log line or event carries key
material: only key ids, states, times and counts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, literal, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import LargeBinary

from assay.audit.models import SecurityAction
from assay.audit.service import RequestMeta, record_event
from assay.core.after_commit import after_commit, after_commit_await
from assay.core.crypto import key_id, new_data_key
from assay.core.db_types import utcnow
from assay.core.keyring_store import KeyringKeeper, bump_generation
from assay.core.principal import Principal
from assay.core.sealed import SealedColumn, sealed_columns
from assay.core.tenancy import across_tenants
from assay.keys.errors import DataKeyInUse, DataKeyNotFound, DataKeyNotRetirable
from assay.keys.models import DataKey, KeyReencryption, KeyState, RunState

# Every ciphertext begins with the 4-byte id of its data key.
_KEY_ID_BYTES = 4
# The data keys serve every organisation: counting and re-sealing span them all.
ACROSS_TENANTS = "data keys seal the values of every organisation"


def ciphertext_key(column: ColumnElement[bytes | None]) -> ColumnElement[bytes]:
    """The key id prefix of a sealed column, in SQL (the same on every dialect)."""
    # Literal positions, so GROUP BY repeats exactly the selected expression.
    return func.substr(column, literal_column("1"), literal_column(str(_KEY_ID_BYTES)))


def key_id_literal(hex_id: str) -> ColumnElement[bytes]:
    return literal(bytes.fromhex(hex_id), LargeBinary)


@dataclass
class KeyUsage:
    """How many values each data key seals, per sealed column."""

    by_key: dict[str, dict[str, int]] = field(default_factory=dict)

    def total(self, kid: str) -> int:
        return sum(self.by_key.get(kid, {}).values())

    def columns(self, kid: str) -> dict[str, int]:
        return dict(sorted(self.by_key.get(kid, {}).items()))


async def key_usage(db: AsyncSession, columns: list[SealedColumn] | None = None) -> KeyUsage:
    """Count every sealed value by the data key that sealed it (a scan of each table)."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for sealed in columns if columns is not None else sealed_columns():
        column = getattr(sealed.model, sealed.column)
        prefix = ciphertext_key(column)
        rows = await db.execute(
            across_tenants(
                select(prefix, func.count()).where(column.is_not(None)).group_by(prefix),
                ACROSS_TENANTS,
            )
        )
        for raw, count in rows.all():
            counts[bytes(raw).hex()][sealed.name] = int(count)
    return KeyUsage(dict(counts))


@dataclass(frozen=True, slots=True)
class KeyStatus:
    key: DataKey
    sealed: int
    columns: dict[str, int]


@dataclass(frozen=True, slots=True)
class KeyringStatus:
    keys: list[KeyStatus]
    # Values sealed with a key id the database does not know at all.
    unknown: dict[str, int]
    runs: list[KeyReencryption]


async def status(db: AsyncSession, *, runs: int = 5) -> KeyringStatus:
    """Every data key with its state and how many values it still seals, newest first,
    and the latest re-encryption runs."""
    keys = list((await db.execute(select(DataKey).order_by(DataKey.created_at.desc()))).scalars())
    usage = await key_usage(db)
    known = {key.key_id for key in keys}
    latest = (
        await db.execute(
            select(KeyReencryption).order_by(KeyReencryption.created_at.desc()).limit(runs)
        )
    ).scalars()
    return KeyringStatus(
        keys=[KeyStatus(key, usage.total(key.key_id), usage.columns(key.key_id)) for key in keys],
        unknown={kid: usage.total(kid) for kid in usage.by_key if kid not in known},
        runs=list(latest),
    )


@dataclass(frozen=True, slots=True)
class Rotation:
    key: DataKey
    previous_key_id: str
    run: KeyReencryption


def _actor_name(actor: Principal | None, meta: RequestMeta) -> str:
    if actor is not None:
        return f"{actor.kind}:{actor.actor_id}"
    return meta.user_agent or "cli"


async def _fresh_key_id(db: AsyncSession) -> tuple[str, bytes]:
    """A new random data key whose id no key (retired ones included) has had."""
    while True:
        material = new_data_key()
        kid = key_id(material).hex()
        if await db.get(DataKey, kid) is None:
            return kid, material


async def rotate(
    db: AsyncSession,
    keeper: KeyringKeeper,
    meta: RequestMeta,
    actor: Principal | None,
    *,
    wake: Callable[[], None] | None = None,
) -> Rotation:
    """Make a new data key active, the active one decrypt-only, and queue a re-encryption.

    This process seals with the new key as soon as the transaction commits; the others
    from their next look at the generation (ADR 0024).
    """
    await bump_generation(db)
    current = (
        await db.execute(select(DataKey).where(DataKey.state == KeyState.ACTIVE))
    ).scalar_one()
    kid, material = await _fresh_key_id(db)
    now = utcnow()
    current.state = KeyState.DECRYPT_ONLY
    current.deactivated_at = now
    key = DataKey(
        key_id=kid,
        state=KeyState.ACTIVE,
        wrapped_key=await keeper.provider.wrap(kid, material),
        wrapped_by=keeper.provider.name,
        origin="generated",
        created_at=now,
        activated_at=now,
    )
    run = KeyReencryption(
        id=uuid.uuid4(),
        key_id=kid,
        state=RunState.QUEUED,
        cursors={},
        requested_by=_actor_name(actor, meta),
        created_at=now,
        updated_at=now,
    )
    db.add_all([key, run])
    await db.flush()
    record_event(
        db,
        meta,
        action=SecurityAction.DATA_KEY_ROTATED,
        # The platform's chain (no organisation), whichever organisation the
        # administrator signed in to.
        actor_kind=actor.kind if actor else "cli",
        actor_id=actor.actor_id if actor else None,
        target_kind="data_key",
        target_id=kid,
        details={"key_id": kid, "previous_key_id": current.key_id, "reencryption_id": str(run.id)},
    )
    after_commit_await(db, keeper.reload)
    if wake is not None:
        after_commit(db, wake)
    return Rotation(key, current.key_id, run)


@dataclass(frozen=True, slots=True)
class Retirement:
    key: DataKey


def retire_grace(keeper: KeyringKeeper) -> timedelta:
    """How long a key must have been decrypt-only before it may be retired: long enough
    that every process has looked at the generation and stopped sealing with it."""
    return timedelta(seconds=2 * keeper.settings.key_refresh_seconds)


async def retire(
    db: AsyncSession,
    keeper: KeyringKeeper,
    meta: RequestMeta,
    actor: Principal | None,
    kid: str,
) -> Retirement:
    """Erase a decrypt-only key's material; refused (with the counts) while any value
    is still sealed with it."""
    await bump_generation(db)
    key = await db.get(DataKey, kid.lower()) if _is_key_id(kid) else None
    if key is None:
        raise DataKeyNotFound(f"There is no data key {kid!r}.")
    if key.state == KeyState.ACTIVE:
        raise DataKeyNotRetirable(
            f"Data key {key.key_id} is the active key; rotate first, then retire it once "
            "nothing uses it."
        )
    if key.state == KeyState.RETIRED:
        raise DataKeyNotRetirable(f"Data key {key.key_id} is already retired.")
    now: datetime = utcnow()
    ready_at = (key.deactivated_at or now) + retire_grace(keeper)
    if ready_at > now:
        raise DataKeyNotRetirable(
            f"Data key {key.key_id} stopped sealing at {key.deactivated_at:%Y-%m-%dT%H:%M:%SZ}; "
            f"it can be retired from {ready_at:%Y-%m-%dT%H:%M:%SZ}, once every process has "
            "stopped using it.",
            extra={"retirable_at": ready_at.isoformat()},
        )
    usage = await key_usage(db)
    still = usage.total(key.key_id)
    if still:
        columns = usage.columns(key.key_id)
        raise DataKeyInUse(
            f"Data key {key.key_id} still seals {still} values; re-encrypt them first "
            "(assay data-keys reencrypt), then retire it.",
            errors=[
                {"field": name, "code": "still_sealed", "message": f"{count} values"}
                for name, count in columns.items()
            ],
            extra={"sealed": still, "columns": columns},
        )
    key.state = KeyState.RETIRED
    key.wrapped_key = None
    key.retired_at = now
    await db.flush()
    record_event(
        db,
        meta,
        action=SecurityAction.DATA_KEY_RETIRED,
        # The platform's chain (no organisation), whichever organisation the
        # administrator signed in to.
        actor_kind=actor.kind if actor else "cli",
        actor_id=actor.actor_id if actor else None,
        target_kind="data_key",
        target_id=key.key_id,
        details={"key_id": key.key_id},
    )
    after_commit_await(db, keeper.reload)
    return Retirement(key)


def _is_key_id(value: str) -> bool:
    try:
        return len(bytes.fromhex(value)) == _KEY_ID_BYTES
    except ValueError:
        return False


async def get_run(db: AsyncSession, run_id: uuid.UUID) -> KeyReencryption:
    run = await db.get(KeyReencryption, run_id)
    if run is None:
        raise DataKeyNotFound("There is no such re-encryption run.")
    return run


async def request_reencryption(
    db: AsyncSession, keeper: KeyringKeeper, meta: RequestMeta, actor: Principal | None
) -> KeyReencryption:
    """The unfinished run if there is one, else a new queued run."""
    unfinished = (
        await db.execute(
            select(KeyReencryption)
            .where(KeyReencryption.state.in_([RunState.QUEUED, RunState.RUNNING]))
            .order_by(KeyReencryption.created_at)
            .limit(1)
        )
    ).scalar_one_or_none()
    if unfinished is not None:
        return unfinished
    now = utcnow()
    run = KeyReencryption(
        id=uuid.uuid4(),
        key_id=keeper.keyring.active_key_id,
        state=RunState.QUEUED,
        cursors={},
        requested_by=_actor_name(actor, meta),
        created_at=now,
        updated_at=now,
    )
    db.add(run)
    await db.flush()
    return run
