"""Accountable humans: every principal records the human answerable for it
(``principals.accountable_human_id``), which two-person rules compare.

Backfill: a user is its own. A service account answers to the principal that created it,
taken from, in order: the actor of its ``principal.created`` ledger event; the creator of
its earliest role binding (``add_member`` binds with the creator as actor); the creator of
the project of its earliest binding. A creator that is itself a service account is
replaced by that account's accountable human. A service account none of these name stays
NULL: the two-person rules then refuse it (fail closed), and it holds no role anyway.

Revision ID: 0012_foureyes_accountable
Revises: 0011_keys_invitations
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_foureyes_accountable"
down_revision: str | None = "0011_keys_invitations"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTERs, not a batch: on SQLite a batch rebuilds `principals`, and dropping the
    # old table fails under the foreign keys that API keys and bindings hold to it.
    op.add_column("principals", sa.Column("accountable_human_id", sa.String(40), nullable=True))
    op.create_index("ix_principals_accountable_human_id", "principals", ["accountable_human_id"])
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    conn.execute(sa.text("UPDATE principals SET accountable_human_id = id WHERE kind = 'user'"))
    kinds: dict[str, str] = {
        row[0]: row[1] for row in conn.execute(sa.text("SELECT id, kind FROM principals"))
    }
    accountable = {pid: pid for pid, kind in kinds.items() if kind == "user"}
    accounts = [
        row[0]
        for row in conn.execute(
            sa.text(
                "SELECT id FROM principals WHERE kind = 'service_account' ORDER BY created_at, id"
            )
        )
    ]
    logged: dict[str, str | None] = {
        row[0]: row[1]
        for row in conn.execute(
            sa.text(
                "SELECT o.object_id, l.actor FROM ledger_leaves l "
                "JOIN ledger_leaf_objects o ON o.leaf_idx = l.idx "
                "WHERE l.type = 'principal.created' AND o.kind = 'principal'"
            )
        )
    }
    for account in accounts:
        candidates: list[str | None] = [logged.get(account)]
        first = conn.execute(
            sa.text(
                "SELECT b.created_by, p.created_by FROM role_bindings b "
                "LEFT JOIN projects p ON p.id = b.project_id "
                "WHERE b.principal_id = :pid ORDER BY b.created_at, b.id"
            ),
            {"pid": account},
        ).first()
        if first is not None:
            candidates += [first[0], first[1]]
        for creator in candidates:
            if creator is None or creator == account or creator not in kinds:
                continue
            human = accountable.get(creator)
            if human is not None:
                accountable[account] = human
                conn.execute(
                    sa.text("UPDATE principals SET accountable_human_id = :h WHERE id = :pid"),
                    {"h": human, "pid": account},
                )
                break


def downgrade() -> None:
    op.drop_index("ix_principals_accountable_human_id", table_name="principals")
    op.drop_column("principals", "accountable_human_id")
