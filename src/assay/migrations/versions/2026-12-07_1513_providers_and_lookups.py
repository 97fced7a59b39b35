"""providers and lookups: each organisation's evidence providers and its past lookups

Revision ID: 20261207_1513
Revises: 20261207_1500
Create Date: 2026-12-07 15:13:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import assay.core.db_types

revision: str = "20261207_1513"
down_revision: str | None = "20261207_1500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Eight bytes everywhere: FLOAT already is on SQLite and PostgreSQL; MariaDB's is four.
_DOUBLE = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


def _org(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id"],
        ["organisations.id"],
        name=op.f(f"fk_{table}_org_id_organisations"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("credential_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("credential_updated_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        _org("providers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
        sa.UniqueConstraint("org_id", "name", name="uq_providers_org_name"),
    )
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_providers_org_id"), ["org_id"], unique=False)

    op.create_table(
        "lookups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("indicator", sa.String(length=2048), nullable=False),
        sa.Column("indicator_digest", sa.String(length=64), nullable=False),
        sa.Column("indicator_type", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=40), nullable=False),
        sa.Column("score", _DOUBLE, nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("redistributed", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", _DOUBLE, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        _org("lookups"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookups")),
    )
    with op.batch_alter_table("lookups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lookups_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "ix_lookups_org_created", ["org_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_lookups_org_indicator", ["org_id", "indicator_digest"], unique=False
        )


def downgrade() -> None:
    op.drop_table("lookups")
    op.drop_table("providers")
