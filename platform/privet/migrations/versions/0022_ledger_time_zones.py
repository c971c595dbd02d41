"""Time zones of the ledger (issue 23): ``ledger_time_zones``, per complete block of 1,024
leaves the earliest and latest event time, so that a time window of GET /v1/audit/events
reads only the blocks that can hold a match (privet.ledger.zones). The rows of the blocks
that exist are written here from the leaves (one grouped read of ``ledger_leaves``); the
sequencer writes each later block in the pass that completes it. The table is append-only
like every ledger table (triggers; on PostgreSQL ``privet_app`` gets SELECT and INSERT).

The ``event_time`` index is dropped: a window no longer reads it, and offered it the
planners read a wide window through it and sorted the matches.

Revision ID: 0022_ledger_time_zones
Revises: 0021_prediction_cases
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0022_ledger_time_zones"
down_revision: str | None = "0021_prediction_cases"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TABLE = "ledger_time_zones"
#: privet.ledger.zones.ZONE_LEAVES when this migration was written (a migration does not
#: import the code it migrates for)
ZONE_LEAVES = 1024
APP_ROLE = "privet_app"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        TABLE,
        sa.Column(
            "block",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("time_min", UTCDateTime(), nullable=False),
        sa.Column("time_max", UTCDateTime(), nullable=False),
    )
    op.execute(
        f"INSERT INTO {TABLE} (block, time_min, time_max) "  # noqa: S608 - constants only
        f"SELECT idx / {ZONE_LEAVES}, min(event_time), max(event_time) FROM ledger_leaves "
        f"WHERE idx < (SELECT count(*) FROM ledger_leaves) / {ZONE_LEAVES} * {ZONE_LEAVES} "
        f"GROUP BY idx / {ZONE_LEAVES}"
    )
    if sqlite:
        for name in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{name.lower()} BEFORE {name} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, 'privet ledger: {name} on {TABLE} refused, "
                "the ledger is append-only'); END"
            )
    else:
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION privet_ledger_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION privet_ledger_append_only()"
        )
        op.execute(f"GRANT SELECT, INSERT ON {TABLE} TO {APP_ROLE}")
    op.drop_index("ix_ledger_leaves_event_time", table_name="ledger_leaves")


def downgrade() -> None:
    op.create_index("ix_ledger_leaves_event_time", "ledger_leaves", ["event_time"])
    if op.get_bind().dialect.name != "sqlite":
        op.execute(f"REVOKE ALL ON {TABLE} FROM {APP_ROLE}")
    op.drop_table(TABLE)
