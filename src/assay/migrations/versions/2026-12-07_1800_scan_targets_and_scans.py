"""scan targets, scans and their attempts (the red-team pack)

Revision ID: 20261207_1800
Revises: 20261207_1600
Create Date: 2026-12-07 18:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import assay.core.db_types

revision: str = "20261207_1800"
down_revision: str | None = "20261207_1600"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Eight bytes everywhere: FLOAT already is on SQLite and PostgreSQL; MariaDB's is four.
_DOUBLE = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")


def _org(table: str) -> list[sa.Column[object] | sa.ForeignKeyConstraint]:
    return [
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f(f"fk_{table}_org_id_organisations"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "scan_targets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("temperature", _DOUBLE, nullable=True),
        sa.Column("rest", sa.JSON(), nullable=True),
        sa.Column("credential_header", sa.String(length=100), nullable=False),
        sa.Column("credential_scheme", sa.String(length=20), nullable=False),
        sa.Column("credential_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("system_prompt_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("requests_per_minute", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", _DOUBLE, nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", assay.core.db_types.UTCDateTime(), nullable=False),
        *_org("scan_targets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_targets")),
        sa.UniqueConstraint("org_id", "name", name="uq_scan_targets_org_name"),
    )
    with op.batch_alter_table("scan_targets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scan_targets_org_id"), ["org_id"], unique=False)

    op.create_table(
        "scans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("target_name", sa.String(length=40), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_url", sa.String(length=2000), nullable=False),
        sa.Column("probe_sets", sa.JSON(), nullable=False),
        sa.Column("transforms", sa.JSON(), nullable=False),
        sa.Column("detector_alias", sa.String(length=64), nullable=False),
        sa.Column("judge_target_id", sa.Uuid(), nullable=True),
        sa.Column("judge_target_name", sa.String(length=40), nullable=True),
        sa.Column("judge_rubric", sa.Text(), nullable=True),
        sa.Column("max_requests", sa.Integer(), nullable=False),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("requests_used", sa.Integer(), nullable=False),
        sa.Column("tokens_used", sa.Integer(), nullable=False),
        sa.Column("marker", sa.String(length=40), nullable=False),
        sa.Column("canary", sa.String(length=40), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        *_org("scans"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
        sa.UniqueConstraint("job_id", name=op.f("uq_scans_job_id")),
    )
    with op.batch_alter_table("scans", schema=None) as batch_op:
        batch_op.create_index("ix_scans_org_created", ["org_id", "created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scans_org_id"), ["org_id"], unique=False)

    op.create_table(
        "scan_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("scan_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("probe_set", sa.String(length=64), nullable=False),
        sa.Column("probe_set_version", sa.Integer(), nullable=False),
        sa.Column("probe_id", sa.String(length=64), nullable=False),
        sa.Column("goal", sa.String(length=500), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("taxonomy", sa.JSON(), nullable=False),
        sa.Column("transforms", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("answer_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("latency_ms", _DOUBLE, nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=True),
        sa.Column("detectors", sa.JSON(), nullable=False),
        sa.Column("hit", sa.Boolean(), nullable=False),
        sa.Column("created_at", assay.core.db_types.UTCDateTime(), nullable=False),
        *_org("scan_attempts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_attempts")),
        sa.UniqueConstraint("scan_id", "number", name="uq_scan_attempts_scan_number"),
    )
    with op.batch_alter_table("scan_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scan_attempts_org_scan", ["org_id", "scan_id", "number"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_scan_attempts_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    op.drop_table("scan_attempts")
    op.drop_table("scans")
    op.drop_table("scan_targets")
