"""Monitoring references built at approval: their status (ready, pending, failed), why a
build failed, and what it was built from (dataset version, split, rows used of rows
available, sample seed). Still no text: ids, counts and a short reason.

Revision ID: 0009_reference_status
Revises: 0008_monitoring
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_reference_status"
down_revision: str | None = "0008_monitoring"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("monitoring_references") as batch:
        batch.add_column(sa.Column("status", sa.String(20), nullable=False, server_default="ready"))
        batch.add_column(sa.Column("detail", sa.String(500), nullable=True))
        batch.add_column(sa.Column("meta", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitoring_references") as batch:
        batch.drop_column("meta")
        batch.drop_column("detail")
        batch.drop_column("status")
