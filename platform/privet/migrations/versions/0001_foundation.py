"""Foundation: projects, principals, role bindings, API keys.

Revision ID: 0001_foundation
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
    )
    op.create_table(
        "principals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("issuer", sa.String(500)),
        sa.Column("subject", sa.String(500)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("issuer", "subject", name="uq_principal_issuer_subject"),
    )
    op.create_table(
        "role_bindings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("principal_id", sa.String(40), sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id")),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.UniqueConstraint("principal_id", "role", "project_id", name="uq_role_binding"),
    )
    op.create_index("ix_role_bindings_principal_id", "role_bindings", ["principal_id"])
    op.create_index("ix_role_bindings_project_id", "role_bindings", ["project_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("principal_id", sa.String(40), sa.ForeignKey("principals.id"), nullable=False),
        sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id")),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime()),
    )
    op.create_index("ix_api_keys_principal_id", "api_keys", ["principal_id"])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("role_bindings")
    op.drop_table("principals")
    op.drop_table("projects")
