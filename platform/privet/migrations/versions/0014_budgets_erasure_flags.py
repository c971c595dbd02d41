"""Erasure flags that block approval (issue 18, finding 5): each flag on a model version
is open until the remedy is applied, says what raised it (an erasure request, a steward's
erasure, or a job whose dataset version was erased while it ran; the last two have no
request id) and who resolved it, when, and how. Still no text but the system's remedy
justification.

Existing flags stay open: a version flagged before this cannot be approved until a
steward records its remedy.

Revision ID: 0014_budgets_erasure_flags
Revises: 0013_budgets_per_dataset
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0014_budgets_erasure_flags"
down_revision: str | None = "0013_budgets_per_dataset"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_version_erasure_flags") as batch:
        batch.alter_column("request_id", existing_type=sa.String(40), nullable=True)
        batch.add_column(
            sa.Column("source", sa.String(20), nullable=False, server_default="erasure_request")
        )
        batch.add_column(sa.Column("state", sa.String(20), nullable=False, server_default="open"))
        batch.add_column(sa.Column("resolution", sa.String(20), nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(40), nullable=True))
        batch.add_column(sa.Column("resolved_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM model_version_erasure_flags WHERE request_id IS NULL")
    with op.batch_alter_table("model_version_erasure_flags") as batch:
        batch.drop_column("resolved_at")
        batch.drop_column("resolved_by")
        batch.drop_column("resolution")
        batch.drop_column("state")
        batch.drop_column("source")
        batch.alter_column("request_id", existing_type=sa.String(40), nullable=False)
