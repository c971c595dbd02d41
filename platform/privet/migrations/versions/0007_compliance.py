"""Compliance: the data-subject request log, model versions flagged by erasures, and each
project's controller/DPO facts for the record of processing activities.

Revision ID: 0007_compliance
Revises: 0006_inference
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0007_compliance"
down_revision: str | None = "0006_inference"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_subject_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("regime", sa.String(10), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        # Pseudonym (hmac-sha256) of the subject id; the id itself is only sealed.
        sa.Column("subject_digest", sa.String(80), nullable=False),
        sa.Column("sealed", sa.LargeBinary()),
        sa.Column("data_key_id", sa.String(40)),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledge_due", UTCDateTime()),
        sa.Column("acknowledged_at", UTCDateTime()),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime()),
        sa.Column("retain_until", UTCDateTime(), nullable=False),
        sa.Column("submitted_by", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(500)),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_data_subject_requests_subject_digest", "data_subject_requests", ["subject_digest"]
    )
    op.create_table(
        "model_version_erasure_flags",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("model_version_id", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("dataset_version_ids", sa.JSON(), nullable=False),
        sa.Column("remedy", sa.String(20), nullable=False),
        sa.Column("justification", sa.String(2000), nullable=False),
        sa.Column("retrain_job_id", sa.String(40)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    for column in ("request_id", "model_version_id", "project_id"):
        op.create_index(
            f"ix_model_version_erasure_flags_{column}", "model_version_erasure_flags", [column]
        )
    op.create_table(
        "project_compliance_settings",
        sa.Column("project_id", sa.String(40), primary_key=True),
        sa.Column("controller", sa.String(200), nullable=False),
        sa.Column("controller_contact", sa.String(200), nullable=False),
        sa.Column("dpo_contact", sa.String(200), nullable=False),
        sa.Column("subject_categories", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("transfers", sa.String(500), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("project_compliance_settings")
    op.drop_table("model_version_erasure_flags")
    op.drop_index("ix_data_subject_requests_subject_digest", "data_subject_requests")
    op.drop_table("data_subject_requests")
