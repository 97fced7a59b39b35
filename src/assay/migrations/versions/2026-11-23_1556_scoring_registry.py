"""scoring registry and prediction records

Revision ID: 20261123_1556
Revises: 20261123_1540
Create Date: 2026-11-23 15:56:48.506383+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import assay.core.db_types

revision: str = "20261123_1556"
down_revision: str | None = "20261123_1540"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("principal_kind", sa.String(length=16), nullable=False),
        sa.Column("principal_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("inputs_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("derived", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("risk", sa.String(length=64), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_prediction_records_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_records")),
    )
    with op.batch_alter_table("prediction_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prediction_records_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_prediction_records_label"), ["label"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_prediction_records_model_id"), ["model_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_prediction_records_org_id"), ["org_id"], unique=False)

    op.create_table(
        "publisher_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_publisher_keys_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publisher_keys")),
        sa.UniqueConstraint(
            "org_id", "fingerprint", name=op.f("uq_publisher_keys_org_id_fingerprint")
        ),
    )
    with op.batch_alter_table("publisher_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_publisher_keys_org_id"), ["org_id"], unique=False)

    op.create_table(
        "registered_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("deleted_at", assay.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_registered_models_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registered_models")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_registered_models_org_id_name")),
    )
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registered_models_org_id"), ["org_id"], unique=False)

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("artifact_digest", sa.String(length=64), nullable=True),
        sa.Column("artifact_size", sa.BigInteger(), nullable=True),
        sa.Column("artifact_format", sa.String(length=32), nullable=True),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("signer_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_model_versions_model_id_registered_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_model_versions_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model_id", "version", name=op.f("uq_model_versions_model_id_version")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_versions_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_versions_org_id"), ["org_id"], unique=False)

    op.create_table(
        "model_aliases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("updated_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_model_aliases_model_id_registered_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_model_aliases_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_aliases_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_aliases")),
        sa.UniqueConstraint("model_id", "alias", name=op.f("uq_model_aliases_model_id_alias")),
    )
    with op.batch_alter_table("model_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_aliases_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_aliases_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    # Indexes go with their tables (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
    op.drop_table("registered_models")
    op.drop_table("publisher_keys")
    op.drop_table("prediction_records")
