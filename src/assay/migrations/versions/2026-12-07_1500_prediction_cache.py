"""prediction cache: prediction records say whether the cache answered them

Revision ID: 20261207_1500
Revises: 20261207_1400
Create Date: 2026-12-07 15:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_1500"
down_revision: str | None = "20261207_1400"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A server default fills the existing rows (none was a hit) on every dialect.
    with op.batch_alter_table("prediction_records") as batch:
        batch.add_column(
            sa.Column("cache_hit", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("prediction_records") as batch:
        batch.drop_column("cache_hit")
