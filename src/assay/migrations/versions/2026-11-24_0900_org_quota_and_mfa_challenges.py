"""organisations' scoring quota; users' last completed second factor

Revision ID: 20261124_0900
Revises: 20261123_1700
Create Date: 2026-11-24 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assay.core.db_types

revision: str = "20261124_0900"
down_revision: str | None = "20261123_1700"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: existing organisations keep the default quota, existing users have no
    # completed challenge to compare with.
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scoring_quota", sa.String(length=200), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_mfa_at", assay.core.db_types.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_mfa_at")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("scoring_quota")
