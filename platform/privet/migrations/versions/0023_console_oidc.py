"""Console OIDC sign-in (issue 20): `console_oidc_logins`, one row per sign-in in progress
(the digest of its pre-session cookie and state, its nonce and PKCE verifier, one use);
`console_sessions` learns how a session began (`method`) and, for OIDC, the roles its ID
token carried (`token_bindings`).

Revision ID: 0023_console_oidc
Revises: 0022_ledger_time_zones
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0023_console_oidc"
down_revision: str | None = "0022_ledger_time_zones"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_oidc_logins",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("digest", sa.String(length=64), nullable=False, unique=True),
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("next_path", sa.String(length=500), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_console_oidc_logins_expires_at", "console_oidc_logins", ["expires_at"])
    with op.batch_alter_table("console_sessions") as batch:
        batch.add_column(
            sa.Column("method", sa.String(length=10), nullable=False, server_default="api_key")
        )
        batch.add_column(sa.Column("token_bindings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("console_sessions") as batch:
        batch.drop_column("token_bindings")
        batch.drop_column("method")
    op.drop_index("ix_console_oidc_logins_expires_at", table_name="console_oidc_logins")
    op.drop_table("console_oidc_logins")
