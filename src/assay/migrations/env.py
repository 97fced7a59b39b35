"""Alembic environment: always run through `assay.core.migrations` on a live connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from assay.tables import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = config.attributes.get("connection")
    if context.is_offline_mode() or connection is None:
        msg = "run migrations with `assay migrate`, which supplies a live connection"
        raise RuntimeError(msg)
    _run(connection)


_main()
