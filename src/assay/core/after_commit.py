"""Work that may happen only once a transaction has committed: mail now, jobs later.

`after_commit(db, callback)` keeps the callback on the session. When the session's
outermost transaction commits, every callback runs; when it ends any other way
(rollback, close, an error), they are dropped. A client is never told about a change
(a reset link, an invitation) that was rolled back, whatever path the request took.

Callbacks run inside the commit, on the event loop: they must only hand work over
(put it on a queue, start a task), never wait for it. See
docs/decisions/0005-outgoing-mail.md.

`after_commit_await(db, factory)` is for the few things that must be finished before
anyone is told the change happened, such as pushing a revocation into the shared
cache: the coroutine from `factory()` is awaited inside `AsyncSession.commit()`, so by
the time `commit()` returns (and a response can be sent) it has run. Keep these short;
they delay the commit's return, not the commit itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import in_greenlet

from assay.core.logging import get_logger

_CALLBACKS = "assay_after_commit"
log = get_logger("assay.db")
# Tasks started for a plain synchronous Session, kept until done (the loop holds weakly).
_handed_over: set[asyncio.Task[Any]] = set()

# A callback, and whether its result is a coroutine to await inside the commit.
_Entry = tuple[Callable[[], Any], bool]


def after_commit(session: AsyncSession | Session, callback: Callable[[], Any]) -> None:
    """Run `callback` when the session's current transaction commits; never if it does not."""
    session.info.setdefault(_CALLBACKS, []).append((callback, False))


def after_commit_await(
    session: AsyncSession | Session, factory: Callable[[], Awaitable[Any]]
) -> None:
    """Await `factory()` when the transaction commits, before `commit()` returns.

    Never if the transaction does not commit. A failure is logged, not raised: the
    commit has happened and cannot be taken back.
    """
    session.info.setdefault(_CALLBACKS, []).append((factory, True))


def pending_callbacks(session: AsyncSession | Session) -> int:
    """How many callbacks wait for the next commit (for tests and diagnostics)."""
    return len(session.info.get(_CALLBACKS, ()))


def _await(factory: Callable[[], Awaitable[Any]]) -> None:
    if in_greenlet():
        # AsyncSession.commit() runs the sync commit in a greenlet; await_only hands the
        # coroutine to the event loop and resumes here when it is done.
        await_only(factory())
        return
    # A plain synchronous Session (no greenlet): nothing can wait, so hand it over.
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_as_coroutine(factory))
        return
    task = loop.create_task(_as_coroutine(factory))
    _handed_over.add(task)
    task.add_done_callback(_handed_over.discard)


async def _as_coroutine(factory: Callable[[], Awaitable[Any]]) -> Any:
    return await factory()


def _run_callbacks(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the outer transaction may still roll back
    callbacks: list[_Entry] = session.info.pop(_CALLBACKS, [])
    for callback, awaited in callbacks:
        try:
            if awaited:
                _await(callback)
            else:
                callback()
        # The commit has happened: one failing hook must neither undo it nor stop the rest.
        except Exception:
            log.exception("after_commit_callback_failed", callback=repr(callback))


def _drop_callbacks(session: Session, transaction: SessionTransaction) -> None:
    # Savepoints end inside the outer transaction; only the outermost one decides.
    # After a commit the list is already empty, so this drops only uncommitted work.
    if transaction.parent is None:
        session.info.pop(_CALLBACKS, None)


event.listen(Session, "after_commit", _run_callbacks)
event.listen(Session, "after_transaction_end", _drop_callbacks)
