"""Audit ledger: append-only entries, Merkle leaves and nodes, tree states, checkpoints.

Append-only is enforced by the database, not only by the code: every ledger table gets
triggers that reject UPDATE and DELETE (and TRUNCATE on PostgreSQL). On PostgreSQL the
cluster-wide role ``privet_app`` (created if missing) gets only SELECT and INSERT on the
ledger tables; run the application as a login role that is a member of it.

On PostgreSQL a BEFORE INSERT trigger assigns ``ledger_entries.id`` (from a sequence) and
records in ``ledger_entries.xid`` the inserting transaction's top-level transaction id
(``pg_current_xact_id()``, xid8: 64-bit, never wraps). The sequencer's floor is an xid:
every entry whose xid is below the xmin of a snapshot it took is committed (visible) or
rolled back (never visible), so it can never be skipped (see privet/ledger/sequencer.py).

Revision ID: 0002_ledger
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0002_ledger"
down_revision: str | None = "0001_foundation"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TABLES = (
    "ledger_entries",
    "ledger_leaves",
    "ledger_leaf_objects",
    "ledger_nodes",
    "ledger_tree_states",
    "ledger_checkpoints",
)
SEQUENCES = ("ledger_entries_id_seq", "ledger_tree_states_id_seq", "ledger_checkpoints_id_seq")
APP_ROLE = "privet_app"
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _autoinc_id(sqlite: bool, *, by_trigger: bool = False) -> sa.Column:  # type: ignore[type-arg]
    if sqlite:
        return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)
    # PostgreSQL: BIGSERIAL, except ledger_entries whose id a trigger assigns.
    return sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=not by_trigger)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    auto = {"sqlite_autoincrement": True}
    op.create_table(
        "ledger_entries",
        _autoinc_id(sqlite, by_trigger=True),
        sa.Column("event", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        **auto,
    )
    op.create_table(
        "ledger_leaves",
        sa.Column("idx", BigId, primary_key=True, autoincrement=False),
        sa.Column("entry_id", BigId, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("project", sa.String(128)),
        sa.Column("actor", sa.String(128)),
        sa.Column("event_time", UTCDateTime(), nullable=False),
        sa.Column("integrated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("entry_id", name="uq_ledger_leaves_entry_id"),
    )
    op.create_index("ix_ledger_leaves_type", "ledger_leaves", ["type"])
    op.create_index("ix_ledger_leaves_project", "ledger_leaves", ["project"])
    op.create_index("ix_ledger_leaves_event_time", "ledger_leaves", ["event_time"])
    op.create_table(
        "ledger_leaf_objects",
        sa.Column("object_id", sa.String(128), primary_key=True),
        sa.Column("leaf_idx", BigId, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(64), nullable=False),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", BigId, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "ledger_tree_states",
        _autoinc_id(sqlite),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("floor_entry_id", sa.BigInteger, nullable=False),
        sa.Column("floor_xid", sa.BigInteger),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        **auto,
    )
    op.create_table(
        "ledger_checkpoints",
        _autoinc_id(sqlite),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tree_size", name="uq_ledger_checkpoints_tree_size"),
        **auto,
    )
    if sqlite:
        _sqlite_triggers()
    else:
        _postgres_objects()


def _sqlite_triggers() -> None:
    for table in TABLES:
        for op_name in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'privet ledger: {op_name} on {table} refused, "
                "the ledger is append-only'); END"
            )


def _postgres_objects() -> None:
    op.execute("CREATE SEQUENCE ledger_entries_id_seq AS BIGINT OWNED BY ledger_entries.id")
    # The inserting transaction's top-level xid (set by the trigger, whatever the client
    # sends): the sequencer integrates every visible entry at once, and moves its floor past
    # an entry's xid only once that transaction has ended (xid < a snapshot's xmin).
    op.execute("ALTER TABLE ledger_entries ADD COLUMN xid xid8 NOT NULL")
    op.execute("CREATE INDEX ix_ledger_entries_xid ON ledger_entries (xid)")
    op.execute(
        """
        CREATE FUNCTION privet_ledger_assign_entry_id() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            NEW.xid := pg_current_xact_id();
            NEW.id := nextval('ledger_entries_id_seq');
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER ledger_entries_assign_id BEFORE INSERT ON ledger_entries "
        "FOR EACH ROW EXECUTE FUNCTION privet_ledger_assign_entry_id()"
    )
    op.execute(
        """
        CREATE FUNCTION privet_ledger_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'privet ledger: % on % refused, the ledger is append-only',
                TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION privet_ledger_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION privet_ledger_append_only()"
        )
    # Roles are cluster-wide: create it once, tolerate a concurrent creator.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
        """  # noqa: S608 - constant names, no input
    )
    op.execute(f"GRANT SELECT, INSERT ON {', '.join(TABLES)} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE ON SEQUENCE {', '.join(SEQUENCES)} TO {APP_ROLE}")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.execute(f"REVOKE ALL ON {', '.join(TABLES)} FROM {APP_ROLE}")
        op.execute(f"REVOKE ALL ON SEQUENCE {', '.join(SEQUENCES)} FROM {APP_ROLE}")
    for table in reversed(TABLES):
        op.drop_table(table)
    if not sqlite:
        op.execute("DROP FUNCTION privet_ledger_append_only()")
        op.execute("DROP FUNCTION privet_ledger_assign_entry_id()")
