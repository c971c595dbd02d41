"""Datasets: datasets, their immutable versions, and which artifacts used which version.

Revision ID: 0004_datasets
Revises: 0003_data_keys
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0004_datasets"
down_revision: str | None = "0003_data_keys"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),
    )
    op.create_index("ix_datasets_project_id", "datasets", ["project_id"])
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("dataset_id", sa.String(40), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("source_sha256", sa.String(80), nullable=False),
        sa.Column("source_bytes", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("label_counts", sa.JSON(), nullable=False),
        sa.Column("split", sa.JSON(), nullable=False),
        sa.Column("declarations", sa.JSON(), nullable=False),
        sa.Column("pii_scan", sa.JSON(), nullable=False),
        sa.Column("epsilon_total", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("parent_version_id", sa.String(40)),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("blob_key", sa.String(400), nullable=False),
        sa.Column("blob_sha256", sa.String(80), nullable=False),
        sa.Column("blob_bytes", sa.BigInteger(), nullable=False),
        sa.Column("data_key_id", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retention_until", UTCDateTime(), nullable=False),
        sa.Column("shredded_at", UTCDateTime()),
        sa.Column("shred_reason", sa.String(40)),
        sa.UniqueConstraint("dataset_id", "number", name="uq_dataset_versions_number"),
    )
    op.create_index("ix_dataset_versions_dataset_id", "dataset_versions", ["dataset_id"])
    op.create_index("ix_dataset_versions_project_id", "dataset_versions", ["project_id"])
    op.create_index(
        "ix_dataset_versions_retention", "dataset_versions", ["state", "retention_until"]
    )
    op.create_table(
        "dataset_version_usage",
        sa.Column(
            "dataset_version_id",
            sa.String(40),
            sa.ForeignKey("dataset_versions.id"),
            primary_key=True,
        ),
        sa.Column("used_by_kind", sa.String(40), primary_key=True),
        sa.Column("used_by_id", sa.String(100), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_dataset_version_usage_used_by_id", "dataset_version_usage", ["used_by_id"])


def downgrade() -> None:
    op.drop_table("dataset_version_usage")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
