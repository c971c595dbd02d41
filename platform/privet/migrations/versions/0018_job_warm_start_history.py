"""Warm start and training history (issue 22): the model version a job starts from
(`training_jobs.init_from_model_version_id`; null for every earlier job, which started
from its base model) and each job's training curve (`training_job_histories`; none for
earlier jobs).

Revision ID: 0018_job_warm_start_history
Revises: 0017_list_indexes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0018_job_warm_start_history"
down_revision: str | None = "0017_list_indexes"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(
            sa.Column("init_from_model_version_id", sa.String(length=40), nullable=True)
        )
    op.create_table(
        "training_job_histories",
        sa.Column("job_id", sa.String(length=40), primary_key=True),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("total_steps", sa.Integer(), nullable=False),
        sa.Column("stride", sa.Integer(), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("epochs", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_training_job_histories_project_id", "training_job_histories", ["project_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_training_job_histories_project_id", table_name="training_job_histories")
    op.drop_table("training_job_histories")
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("init_from_model_version_id")
