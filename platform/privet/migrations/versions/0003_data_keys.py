"""Data keys: one wrapped data key per encrypted object (envelope encryption).

Revision ID: 0003_data_keys
Revises: 0002_ledger
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0003_data_keys"
down_revision: str | None = "0002_ledger"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("object_kind", sa.String(100), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("project_id", sa.String(100), nullable=False),
        # NULL once shredded; never a plaintext key.
        sa.Column("wrapped_key", sa.LargeBinary()),
        sa.Column("kek_id", sa.String(200), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("destroyed_at", UTCDateTime()),
        sa.UniqueConstraint("object_kind", "object_id", name="uq_data_keys_object"),
    )
    op.create_index("ix_data_keys_project_id", "data_keys", ["project_id"])
    op.create_index("ix_data_keys_kek", "data_keys", ["kek_id", "kek_version"])


def downgrade() -> None:
    op.drop_table("data_keys")
