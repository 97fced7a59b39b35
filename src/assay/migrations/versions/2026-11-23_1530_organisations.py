"""organisations: the tenant table

Revision ID: 20261123_1530
Revises:
Create Date: 2026-11-23 15:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assay.core.db_types

revision: str = "20261123_1530"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mfa_required", sa.Boolean(), nullable=False),
        sa.Column("mfa_required_roles", sa.JSON(), nullable=False),
        sa.Column("min_password_length", sa.Integer(), nullable=True),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("deleted_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organisations_slug")),
    )


def downgrade() -> None:
    op.drop_table("organisations")
