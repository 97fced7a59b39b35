"""data keys: wrapped field-encryption keys, the keyring generation, re-encryption runs

The first process to start afterwards imports the key derived from the encryption
secret as the first active data key (it needs the secret, which migrations do not
have), so nothing sealed before has to be re-encrypted (ADR 0024).

Revision ID: 20261208_0900
Revises: 20261207_1830
Create Date: 2026-12-08 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assay.core.db_types

revision: str = "20261208_0900"
down_revision: str | None = "20261207_1830"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("wrapped_by", sa.String(length=128), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("activated_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("deactivated_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("retired_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_data_keys")),
    )
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_keys_state"), ["state"], unique=False)
    # No row yet: the first change inserts it (a restore needs the tables empty).
    op.create_table(
        "keyring_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyring_generation")),
    )
    op.create_table(
        "key_reencryptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("cursors", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("started_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_reencryptions")),
    )
    with op.batch_alter_table("key_reencryptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_key_reencryptions_state"), ["state"], unique=False)


def downgrade() -> None:
    op.drop_table("key_reencryptions")
    op.drop_table("keyring_generation")
    op.drop_table("data_keys")
