"""Training jobs, the privacy-budget ledger, and the model registry.

Revision ID: 0005_jobs_models
Revises: 0004_datasets
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0005_jobs_models"
down_revision: str | None = "0004_datasets"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "training_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("dataset_version_id", sa.String(40), nullable=False),
        sa.Column("dataset_id", sa.String(40)),
        sa.Column("dataset_digest", sa.String(80)),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("base_model", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("target_epsilon", sa.Float()),
        sa.Column("delta", sa.Float()),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("submitted_by", sa.String(60), nullable=False),
        sa.Column("submitted_by_id", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("worker_id", sa.String(200)),
        sa.Column("heartbeat_at", UTCDateTime()),
        sa.Column("cancel_requested_at", UTCDateTime()),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON()),
        sa.Column("reason", sa.String(2000)),
        sa.Column("epsilon_reserved", sa.Float()),
        sa.Column("model_version_id", sa.String(40)),
    )
    op.create_index("ix_training_jobs_project_id", "training_jobs", ["project_id"])
    op.create_index("ix_training_jobs_dataset_version_id", "training_jobs", ["dataset_version_id"])
    op.create_index("ix_training_jobs_state_created", "training_jobs", ["state", "created_at"])

    op.create_table(
        "privacy_budgets",
        sa.Column("dataset_version_id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("epsilon_total", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("epsilon_reserved", sa.Float(), nullable=False),
        sa.Column("epsilon_charged", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_privacy_budgets_project_id", "privacy_budgets", ["project_id"])
    op.create_table(
        "privacy_budget_entries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("dataset_version_id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ledger_entry_id", sa.Integer()),
        sa.UniqueConstraint("job_id", "kind", name="uq_privacy_budget_entries_job_kind"),
    )
    op.create_index(
        "ix_privacy_budget_entries_dataset_version_id",
        "privacy_budget_entries",
        ["dataset_version_id"],
    )
    op.create_index("ix_privacy_budget_entries_job_id", "privacy_budget_entries", ["job_id"])

    op.create_table(
        "models",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(60), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_models_project_name"),
    )
    op.create_index("ix_models_project_id", "models", ["project_id"])
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("model_id", sa.String(40), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("submitted_by", sa.String(60), nullable=False),
        sa.Column("base_model", sa.String(100), nullable=False),
        sa.Column("base_model_sha256", sa.String(80), nullable=False),
        sa.Column("label_names", sa.JSON(), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("dataset_versions", sa.JSON(), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("privacy", sa.JSON()),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("training", sa.JSON(), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("weights_sha256", sa.String(80), nullable=False),
        sa.Column("weights_bytes", sa.Integer(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("blob_key", sa.String(400), nullable=False),
        sa.Column("data_key_id", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("approved_at", UTCDateTime()),
        sa.Column("approved_by", sa.String(60)),
        sa.Column("retired_at", UTCDateTime()),
        sa.Column("retired_by", sa.String(60)),
        sa.Column("retire_reason", sa.String(500)),
        sa.UniqueConstraint("model_id", "number", name="uq_model_versions_number"),
    )
    op.create_index("ix_model_versions_model_id", "model_versions", ["model_id"])
    op.create_index("ix_model_versions_project_id", "model_versions", ["project_id"])
    op.create_index("ix_model_versions_job_id", "model_versions", ["job_id"])


def downgrade() -> None:
    op.drop_table("model_versions")
    op.drop_table("models")
    op.drop_table("privacy_budget_entries")
    op.drop_table("privacy_budgets")
    op.drop_table("training_jobs")
