"""Review case texts (issue 20): the input text of a prediction the decision rules
referred or held for review, sealed with a data key of its own beside its queue item,
and when (and why) that key was destroyed.

Revision ID: 0021_prediction_cases
Revises: 0020_console_sessions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0021_prediction_cases"
down_revision: str | None = "0020_console_sessions"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_cases",
        sa.Column("prediction_id", sa.String(length=40), primary_key=True),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("text_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("shredded_at", UTCDateTime(), nullable=True),
        sa.Column("shred_reason", sa.String(length=20), nullable=True),
    )
    op.create_index("ix_prediction_cases_project_id", "prediction_cases", ["project_id"])
    op.create_index("ix_prediction_cases_created_at", "prediction_cases", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_prediction_cases_created_at", table_name="prediction_cases")
    op.drop_index("ix_prediction_cases_project_id", table_name="prediction_cases")
    op.drop_table("prediction_cases")
