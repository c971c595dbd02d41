"""Monitoring: decisions kept from being final (the review queue), outcomes, drift
aggregates per version and window, validation-time references, alerts.

No column holds an input text: ids, labels, counts, histograms and moments only.

Revision ID: 0008_monitoring
Revises: 0007_compliance
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0008_monitoring"
down_revision: str | None = "0007_compliance"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_decisions",
        sa.Column("prediction_id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("model_version_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("score_ppm", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_prediction_decisions_project_id", "prediction_decisions", ["project_id"])
    op.create_index(
        "ix_prediction_decisions_model_version_id", "prediction_decisions", ["model_version_id"]
    )
    op.create_index("ix_prediction_decisions_created_at", "prediction_decisions", ["created_at"])

    op.create_table(
        "prediction_outcomes",
        sa.Column("prediction_id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("model_version_id", sa.String(40), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("predicted_label", sa.String(100), nullable=False),
        sa.Column("score_ppm", sa.Integer(), nullable=False),
        sa.Column("predicted_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(60), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_prediction_outcomes_project_id", "prediction_outcomes", ["project_id"])
    op.create_index(
        "ix_prediction_outcomes_model_version_id", "prediction_outcomes", ["model_version_id"]
    )
    op.create_index("ix_prediction_outcomes_predicted_at", "prediction_outcomes", ["predicted_at"])

    op.create_table(
        "monitoring_aggregates",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("model_version_id", sa.String(40), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_monitoring_aggregates_model_version_id", "monitoring_aggregates", ["model_version_id"]
    )
    op.create_index(
        "ix_monitoring_aggregates_window_start", "monitoring_aggregates", ["window_start"]
    )

    op.create_table(
        "monitoring_references",
        sa.Column("model_version_id", sa.String(40), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )

    op.create_table(
        "monitoring_alerts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("model_version_id", sa.String(40), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("feature", sa.String(40), nullable=False),
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "model_version_id", "window_start", "feature", name="uq_monitoring_alerts_window"
        ),
    )
    op.create_index(
        "ix_monitoring_alerts_model_version_id", "monitoring_alerts", ["model_version_id"]
    )


def downgrade() -> None:
    op.drop_table("monitoring_alerts")
    op.drop_table("monitoring_references")
    op.drop_table("monitoring_aggregates")
    op.drop_table("prediction_outcomes")
    op.drop_table("prediction_decisions")
