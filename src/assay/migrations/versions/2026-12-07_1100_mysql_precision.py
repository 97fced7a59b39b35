"""MariaDB/MySQL: microsecond timestamps and double-precision scores

MariaDB and MySQL store DATETIME to the second and FLOAT in four bytes unless told
otherwise: events, sessions and locks that happen within one second could not be
ordered or compared, and scores lost digits. Other databases already keep both;
this migration changes nothing there.

Revision ID: 20261207_1100
Revises: 20261124_0900
Create Date: 2026-12-07 11:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "20261207_1100"
down_revision: str | None = "20261124_0900"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOUBLE_COLUMNS = (("prediction_records", "score"), ("prediction_records", "latency_ms"))


def _mysql_family() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def _datetime_columns() -> list[tuple[str, str, bool]]:
    inspector = sa.inspect(op.get_bind())
    found = []
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        for column in inspector.get_columns(table):
            if isinstance(column["type"], mysql.DATETIME):
                found.append((table, column["name"], bool(column["nullable"])))
    return found


def upgrade() -> None:
    if not _mysql_family():
        return
    for table, name, nullable in _datetime_columns():
        op.alter_column(table, name, type_=mysql.DATETIME(fsp=6), existing_nullable=nullable)
    for table, name in DOUBLE_COLUMNS:
        op.alter_column(table, name, type_=mysql.DOUBLE(), existing_nullable=False)


def downgrade() -> None:
    if not _mysql_family():
        return
    for table, name in DOUBLE_COLUMNS:
        op.alter_column(table, name, type_=sa.Float(), existing_nullable=False)
    for table, name, nullable in _datetime_columns():
        op.alter_column(table, name, type_=mysql.DATETIME(), existing_nullable=nullable)
