"""Tenant scoping: the one way to query tenant-owned tables.

Every tenant-owned table mixes in `TenantOwned`. A query on such a table must come from
`scoped()` (filtered to the principal's organisation) or be explicitly marked by
`across_tenants()` with a reason. A session-level guard raises on anything else, so a
forgotten filter fails loudly in every test instead of leaking data in production.

The guard looks at every table the statement reads, not only its main entity: joins,
subqueries in WHERE, CTEs, Core `Table` selects and textual SQL naming a tenant table
are all caught. A nested SELECT built by `scoped()` counts as scoped where it appears.

`scoped()` filters one table, and records which. Any other tenant table a scoped
statement reads - joined onto it, added as columns, in a subquery, or the same table
again under an alias or in a subquery - is filtered to the same organisation by the
guard (SQLAlchemy's `with_loader_criteria` on every `TenantOwned` class, aliases
included), so a join can never bring in another organisation's rows. Where that filter
cannot reach - a Core `Table`, a lightweight `table()`, textual SQL - the guard refuses
the statement instead.

A few tables carry an `org_id` without belonging to one tenant (a platform
administrator's session, a password-reset token, a platform-level security event):
`ORG_LINKED_TABLES` lists them with the reason. Their organisation-level reads still
go through `scoped()`, which accepts them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import Executable, ForeignKey, Select, event, select
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria
from sqlalchemy.orm.util import LoaderCriteriaOption
from sqlalchemy.sql.elements import ClauseElement, ColumnClause, TextClause
from sqlalchemy.sql.expression import Alias, SelectBase, TableClause
from sqlalchemy.sql.visitors import HasTraverseInternals

TENANT_SCOPE_OPTION = "assay_tenant_scope"
# The table a scoped() / scope_statement() statement filtered by its WHERE clause.
TENANT_FILTERED_OPTION = "assay_tenant_filtered"

# Tables with a nullable org_id that are deliberately not tenant-owned, and why.
# tests/security/test_tenant_isolation.py fails if a table with an org_id is neither
# tenant-owned nor listed here.
ORG_LINKED_TABLES: Final[dict[str, str]] = {
    "auth_sessions": "a platform administrator's session may act in no organisation; "
    "a user reads their own sessions across organisations",
    "email_tokens": "reset and verification tokens belong to a person, not an "
    "organisation; only invitations name one",
    "security_events": "platform-level events (sign-in failures for unknown accounts, "
    "organisation creation by the CLI) happen outside any organisation",
}

T = TypeVar("T")
StatementT = TypeVar("StatementT")


class TenantScopeError(RuntimeError):
    """A query touched a tenant-owned table without tenant scoping."""


class HasOrganisation(Protocol):
    @property
    def org_id(self) -> uuid.UUID | None: ...


class TenantOwned:
    """Mixin for tables whose rows belong to exactly one organisation."""

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True, nullable=False
    )


class OrganisationScope:
    """Acting for one organisation without a principal (background loads, flushes)."""

    __slots__ = ("org_id",)

    def __init__(self, org_id: uuid.UUID) -> None:
        self.org_id: uuid.UUID | None = org_id


def _org_of(principal: HasOrganisation) -> uuid.UUID:
    if principal.org_id is None:
        msg = "this principal acts in no organisation"
        raise TenantScopeError(msg)
    return principal.org_id


def _is_org_linked(entity: type[Any]) -> bool:
    table = getattr(entity, "__table__", None)
    return table is not None and getattr(table, "name", None) in ORG_LINKED_TABLES


def scoped(principal: HasOrganisation, entity: type[T]) -> Select[T]:
    """SELECT of `entity` restricted to the principal's organisation."""
    if not (issubclass(entity, TenantOwned) or _is_org_linked(entity)):
        msg = f"{entity.__name__} is not tenant-owned"
        raise TypeError(msg)
    org_id = _org_of(principal)
    return (
        select(entity)
        .where(entity.org_id == org_id)  # type: ignore[attr-defined]
        .execution_options(**_scope_options(org_id, entity))
    )


def scope_statement(principal: HasOrganisation, statement: Any, entity: type[Any]) -> Any:
    """Restrict an UPDATE/DELETE (or any statement with .where) to the principal's org."""
    org_id = _org_of(principal)
    return statement.where(entity.org_id == org_id).execution_options(
        **_scope_options(org_id, entity)
    )


def _scope_options(org_id: uuid.UUID, entity: type[Any]) -> dict[str, str]:
    return {TENANT_SCOPE_OPTION: str(org_id), TENANT_FILTERED_OPTION: entity.__table__.name}


def across_tenants(statement: StatementT, reason: str) -> StatementT:
    """Mark a statement that deliberately spans organisations (platform admin, login)."""
    if not reason.strip():
        msg = "a cross-tenant query needs a reason"
        raise ValueError(msg)
    return statement.execution_options(**{TENANT_SCOPE_OPTION: f"*:{reason}"})  # type: ignore[attr-defined, no-any-return]


# --- the guard ----------------------------------------------------------------------------


def _subclasses(cls: type[Any]) -> Iterator[type[Any]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


class _TenantTables:
    """The tenant tables, recomputed only when a new TenantOwned class appears."""

    classes: tuple[type[Any], ...] = ()
    names: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None

    @classmethod
    def current(cls) -> tuple[frozenset[str], re.Pattern[str] | None]:
        classes = tuple(_subclasses(TenantOwned))
        if classes != cls.classes:
            names = frozenset(
                str(table.name)
                for owned in classes
                if (table := getattr(owned, "__table__", None)) is not None
            )
            # Whole words only, any case: `api_keys` but not `my_api_keys_count`.
            cls.pattern = (
                re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b", re.IGNORECASE)
                if names
                else None
            )
            cls.names, cls.classes = names, classes
        return cls.names, cls.pattern


def tenant_table_names() -> frozenset[str]:
    """Names of the tables of every mapped `TenantOwned` class imported so far."""
    return _TenantTables.current()[0]


def _is_scoped(element: Any) -> bool:
    options = getattr(element, "_execution_options", None)
    return options is not None and TENANT_SCOPE_OPTION in options


@dataclass(frozen=True, slots=True)
class _Scope:
    """A scoped() part of a statement, as the walk below goes through it."""

    org: str
    filtered: str | None  # the table its WHERE clause filters
    root: int  # id() of the scoped statement itself
    nested: bool = False  # inside a subquery of it: a FROM of its own, not the filtered one


@dataclass(slots=True)
class TenantReads:
    """The tenant tables a statement reads, by what the guard must do about each."""

    # Outside any scoped()/across_tenants() part: refused.
    unscoped: set[str] = field(default_factory=set)
    # Inside a scoped part, where no ORM filter reaches (Core table, textual SQL): refused.
    unfilterable: set[str] = field(default_factory=set)
    # Organisations of scoped parts that read mapped tenant tables beyond the filtered
    # one: the guard filters those to the organisation.
    to_filter: set[str] = field(default_factory=set)


def _base_table(element: Any) -> TableClause | None:
    """The table behind a column, table or table alias; None for anything else."""
    if isinstance(element, ColumnClause):
        element = element.table
    if isinstance(element, Alias):
        element = element.element
    return element if isinstance(element, TableClause) else None


def tenant_reads(
    statement: Executable | ClauseElement,
    scope: str | None = None,
    filtered: str | None = None,
) -> TenantReads:
    """Every tenant table `statement` reads, sorted by how it is scoped.

    `scope` and `filtered` are the statement's own tenant options, when it has them.
    """
    names, pattern = _TenantTables.current()
    reads = TenantReads()
    start = None if scope is None else _Scope(scope, filtered, id(statement))
    stack: list[tuple[Any, _Scope | None]] = [(statement, start)]
    seen: set[tuple[int, _Scope | None]] = set()
    while stack:
        element, context = stack.pop()
        if (id(element), context) in seen:
            continue
        seen.add((id(element), context))
        if element is not statement and _is_scoped(element):
            options = element._execution_options
            value = str(options[TENANT_SCOPE_OPTION])
            if value.startswith("*:"):
                continue  # an across_tenants() part, with its reason
            context = _Scope(value, options.get(TENANT_FILTERED_OPTION), id(element))
        if isinstance(element, TextClause):
            if pattern is not None:
                found = {match.lower() for match in pattern.findall(element.text)}
                (reads.unscoped if context is None else reads.unfilterable).update(found)
            continue
        table = _base_table(element)
        if table is not None:
            if table.name in names:
                _sort_table(reads, context, element, table.name)
            continue
        if isinstance(element, ColumnClause) and element.table is not None:
            # A column of a subquery, CTE or join: what it reads is in there (a column
            # lists no children of its own).
            stack.append((element.table, context))
            continue
        if (
            context is not None
            and not context.nested
            and id(element) != context.root
            and isinstance(element, SelectBase)
        ):
            context = _Scope(context.org, context.filtered, context.root, nested=True)
        stack.extend((child, context) for child in _children(element))
    return reads


def _children(element: Any) -> Any:
    # A SELECT's own get_children() adds the FROMs it derives from its columns, as bare
    # tables even where the columns are the ORM's; its stored parts alone (columns, FROM
    # list, joins, criteria) say how each table is read.
    if isinstance(element, Select):
        return HasTraverseInternals.get_children(element)
    return element.get_children()


def _sort_table(reads: TenantReads, context: _Scope | None, element: Any, name: str) -> None:
    if context is None:
        reads.unscoped.add(name)
        return
    entity = element._annotations.get("parententity")
    if entity is None:
        # Core form. The filtered table itself, at the scoped statement's own level, is
        # the one its WHERE clause filters; any other Core reading is out of reach.
        aliased = isinstance(element, Alias) or isinstance(getattr(element, "table", None), Alias)
        if name == context.filtered and not context.nested and not aliased:
            return
        reads.unfilterable.add(name)
        return
    if not issubclass(entity.mapper.class_, TenantOwned):
        reads.unfilterable.add(name)  # mapped, but not as a tenant class: no filter applies
        return
    if name == context.filtered and not context.nested and not entity.is_aliased_class:
        return
    reads.to_filter.add(context.org)


def unscoped_tenant_tables(statement: Executable | ClauseElement) -> set[str]:
    """Tenant tables `statement` reads outside any `scoped()`/`across_tenants()` part."""
    return tenant_reads(statement).unscoped


def _tenant_filter(org_id: uuid.UUID) -> LoaderCriteriaOption:
    # The lambda is cached by its code; org_id becomes a bound parameter.
    return with_loader_criteria(
        TenantOwned,
        lambda cls: cls.org_id == org_id,
        include_aliases=True,
    )


def _guard(state: ORMExecuteState) -> None:
    statement = state.statement
    textual = isinstance(statement, TextClause)
    if not (state.is_select or state.is_update or state.is_delete or textual):
        return
    scope = state.execution_options.get(TENANT_SCOPE_OPTION)
    if scope is not None and str(scope).startswith("*:"):
        return  # across_tenants(), with its reason
    # Relationship and column loads of an already-scoped object are safe.
    if state.is_relationship_load or state.is_column_load:
        return
    reads = tenant_reads(
        statement,
        None if scope is None else str(scope),
        state.execution_options.get(TENANT_FILTERED_OPTION),
    )
    if reads.unscoped:
        what = "textual SQL naming" if textual else "query on"
        msg = (
            f"{what} tenant-owned {', '.join(sorted(reads.unscoped))} without tenant scoping; "
            "use assay.core.tenancy.scoped() or across_tenants()"
        )
        raise TenantScopeError(msg)
    if reads.unfilterable:
        msg = (
            f"a scoped query reads tenant-owned {', '.join(sorted(reads.unfilterable))} as a "
            "Core table or in textual SQL, where the tenant filter cannot reach; use the "
            "mapped class, or across_tenants()"
        )
        raise TenantScopeError(msg)
    if reads.to_filter:
        if len(reads.to_filter) > 1:
            msg = "parts of one query are scoped to different organisations"
            raise TenantScopeError(msg)
        org_id = uuid.UUID(next(iter(reads.to_filter)))
        state.statement = statement.options(_tenant_filter(org_id))


event.listen(Session, "do_orm_execute", _guard)
