"""Capability rules (issue 18): a service account belongs to one project (only that
project's admins mint its keys, scoped to it), and invitations replace minting keys for
other people. Existing service accounts get the project of their first role binding.

Revision ID: 0011_keys_invitations
Revises: 0010_freetext_sealed
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0011_keys_invitations"
down_revision: str | None = "0010_freetext_sealed"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # A plain column (no foreign key, like `created_by`): SQLite adds and drops it in place,
    # without rebuilding `principals`, which role bindings and keys reference.
    op.add_column("principals", sa.Column("project_id", sa.String(40), nullable=True))
    op.create_index("ix_principals_project_id", "principals", ["project_id"])
    op.execute(
        """
        UPDATE principals SET project_id = (
            SELECT rb.project_id FROM role_bindings rb
            WHERE rb.principal_id = principals.id AND rb.project_id IS NOT NULL
            ORDER BY rb.created_at, rb.id LIMIT 1
        )
        WHERE kind = 'service_account'
        """
    )
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("accepted_at", UTCDateTime()),
        sa.Column("accepted_by", sa.String(40)),
        sa.Column("revoked_at", UTCDateTime()),
    )
    op.create_index("ix_invitations_project_id", "invitations", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_invitations_project_id", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index("ix_principals_project_id", table_name="principals")
    op.drop_column("principals", "project_id")
