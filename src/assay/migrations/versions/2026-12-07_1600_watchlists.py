"""watchlists: indicators an organisation has looked up again on a schedule

Revision ID: 20261207_1600
Revises: 20261207_1513
Create Date: 2026-12-07 16:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import assay.core.db_types

revision: str = "20261207_1600"
down_revision: str | None = "20261207_1513"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Eight bytes everywhere: FLOAT already is on SQLite and PostgreSQL; MariaDB's is four.
_DOUBLE = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("indicator", sa.String(length=2048), nullable=False),
        sa.Column("indicator_digest", sa.String(length=64), nullable=False),
        sa.Column("indicator_type", sa.String(length=16), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("last_verdict", sa.String(length=40), nullable=True),
        sa.Column("last_score", _DOUBLE, nullable=True),
        sa.Column("last_lookup_id", sa.Uuid(), nullable=True),
        sa.Column("last_checked_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("next_check_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_watchlist_entries_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watchlist_entries")),
        sa.UniqueConstraint(
            "org_id", "indicator_digest", name="uq_watchlist_entries_org_indicator"
        ),
    )
    with op.batch_alter_table("watchlist_entries", schema=None) as batch_op:
        batch_op.create_index("ix_watchlist_entries_next_check_at", ["next_check_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_watchlist_entries_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    op.drop_table("watchlist_entries")
