"""Audited inference: predictions (ids, digests and outputs only) and their reviews.

Revision ID: 0006_inference
Revises: 0005_jobs_models
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0006_inference"
down_revision: str | None = "0005_jobs_models"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("model_id", sa.String(40), nullable=False),
        sa.Column("model_version_id", sa.String(40), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("caller", sa.String(60), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        # Keyed digest (hmac-sha256) of the input: never the input itself.
        sa.Column("input_digest", sa.String(80), nullable=False),
        sa.Column("subject_digest", sa.String(80)),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("score_ppm", sa.Integer(), nullable=False),
        sa.Column("human_reviewed", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_predictions_project_id", "predictions", ["project_id"])
    op.create_index("ix_predictions_model_version_id", "predictions", ["model_version_id"])
    op.create_index("ix_predictions_subject_digest", "predictions", ["subject_digest"])

    op.create_table(
        "prediction_reviews",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("prediction_id", sa.String(40), sa.ForeignKey("predictions.id"), nullable=False),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("label", sa.String(100)),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("reviewer", sa.String(60), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_prediction_reviews_prediction_id", "prediction_reviews", ["prediction_id"])
    op.create_index("ix_prediction_reviews_project_id", "prediction_reviews", ["project_id"])


def downgrade() -> None:
    op.drop_table("prediction_reviews")
    op.drop_table("predictions")
