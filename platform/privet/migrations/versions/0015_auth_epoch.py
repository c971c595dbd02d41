"""The authentication epoch (issue 23): one counter row that the database itself bumps on
every insert, update or delete of principals, role bindings and API keys (triggers, so no
code path, ORM or not, can change who may do what without moving it). Replicas cache
identities under the epoch they read them at and drop them once it moves.

Revision ID: 0015_auth_epoch
Revises: 0014_budgets_erasure_flags
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_auth_epoch"
down_revision: str | None = "0014_budgets_erasure_flags"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TABLES = ("principals", "role_bindings", "api_keys")
OPS = ("INSERT", "UPDATE", "DELETE")
BUMP = "UPDATE auth_epoch SET value = value + 1 WHERE id = 1"


def upgrade() -> None:
    table = op.create_table(
        "auth_epoch",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.bulk_insert(table, [{"id": 1, "value": 0}])
    if op.get_bind().dialect.name == "sqlite":
        for name in TABLES:
            for verb in OPS:
                op.execute(
                    f"CREATE TRIGGER {name}_auth_epoch_{verb.lower()} AFTER {verb} ON {name} "
                    f"BEGIN {BUMP}; END"
                )
        return
    op.execute(
        f"""
        CREATE FUNCTION privet_bump_auth_epoch() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            {BUMP};
            RETURN NULL;
        END $$
        """
    )
    for name in TABLES:
        op.execute(
            f"CREATE TRIGGER {name}_auth_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {name} FOR EACH STATEMENT EXECUTE FUNCTION privet_bump_auth_epoch()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in TABLES:
            for verb in OPS:
                op.execute(f"DROP TRIGGER {name}_auth_epoch_{verb.lower()}")
    else:
        for name in TABLES:
            op.execute(f"DROP TRIGGER {name}_auth_epoch ON {name}")
        op.execute("DROP FUNCTION privet_bump_auth_epoch()")
    op.drop_table("auth_epoch")
