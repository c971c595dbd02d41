"""Privacy budgets belong to the dataset, not to one version (issue 18, finding 4).

`privacy_budgets` is keyed by dataset: the per-version rows of a dataset are merged into
one whose reserved and charged ε are the sums of theirs and whose total is the smallest
any version of the dataset declared. Every budget entry records its dataset as well as
the version its job trained on. Still no text: ids, numbers and times.

Revision ID: 0013_budgets_per_dataset
Revises: 0012_foureyes_accountable
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0013_budgets_per_dataset"
down_revision: str | None = "0012_foureyes_accountable"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def _least(a: str, b: str) -> str:
    name = "min" if op.get_bind().dialect.name == "sqlite" else "LEAST"
    return f"{name}({a}, {b})"


def _budget_table(name: str, key: str) -> None:
    op.create_table(
        name,
        sa.Column(key, sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column("epsilon_total", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("epsilon_reserved", sa.Float(), nullable=False),
        sa.Column("epsilon_charged", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def upgrade() -> None:
    with op.batch_alter_table("privacy_budget_entries") as batch:
        batch.add_column(sa.Column("dataset_id", sa.String(40), nullable=True))
    op.execute(
        "UPDATE privacy_budget_entries SET dataset_id = COALESCE("
        "(SELECT v.dataset_id FROM dataset_versions v "
        "WHERE v.id = privacy_budget_entries.dataset_version_id), dataset_version_id)"
    )
    with op.batch_alter_table("privacy_budget_entries") as batch:
        batch.alter_column("dataset_id", existing_type=sa.String(40), nullable=False)
        batch.create_index("ix_privacy_budget_entries_dataset_id", ["dataset_id"])

    _budget_table("privacy_budgets_by_dataset", "dataset_id")
    total = _least("g.epsilon_total", "COALESCE(d.epsilon_total, g.epsilon_total)")
    op.execute(  # the only interpolation is a SQL function name (no input)
        "INSERT INTO privacy_budgets_by_dataset (dataset_id, project_id, epsilon_total, "  # noqa: S608
        "delta, epsilon_reserved, epsilon_charged, updated_at) "
        f"SELECT g.dataset_id, g.project_id, {total}, g.delta, g.epsilon_reserved, "
        "g.epsilon_charged, g.updated_at FROM ("
        "SELECT COALESCE(v.dataset_id, b.dataset_version_id) AS dataset_id, "
        "MIN(b.project_id) AS project_id, MIN(b.epsilon_total) AS epsilon_total, "
        "MIN(b.delta) AS delta, SUM(b.epsilon_reserved) AS epsilon_reserved, "
        "SUM(b.epsilon_charged) AS epsilon_charged, MAX(b.updated_at) AS updated_at "
        "FROM privacy_budgets b LEFT JOIN dataset_versions v ON v.id = b.dataset_version_id "
        "GROUP BY COALESCE(v.dataset_id, b.dataset_version_id)) g "
        "LEFT JOIN (SELECT dataset_id, MIN(epsilon_total) AS epsilon_total "
        "FROM dataset_versions GROUP BY dataset_id) d ON d.dataset_id = g.dataset_id"
    )
    op.drop_index("ix_privacy_budgets_project_id", table_name="privacy_budgets")
    op.drop_table("privacy_budgets")
    op.rename_table("privacy_budgets_by_dataset", "privacy_budgets")
    op.create_index("ix_privacy_budgets_project_id", "privacy_budgets", ["project_id"])


def downgrade() -> None:
    """Split each dataset's budget back per version, from the entries (what each version's
    jobs reserved, charged and released) and each version's own declaration."""
    _budget_table("privacy_budgets_by_version", "dataset_version_id")
    op.execute(
        "INSERT INTO privacy_budgets_by_version (dataset_version_id, project_id, "
        "epsilon_total, delta, epsilon_reserved, epsilon_charged, updated_at) "
        "SELECT e.dataset_version_id, MIN(e.project_id), "
        "COALESCE(MIN(v.epsilon_total), MIN(b.epsilon_total)), "
        "COALESCE(MIN(v.delta), MIN(b.delta)), "
        "SUM(CASE e.kind WHEN 'reserve' THEN e.epsilon WHEN 'charge' THEN -e.epsilon "
        "WHEN 'release' THEN -e.epsilon ELSE 0 END), "
        "SUM(CASE e.kind WHEN 'charge' THEN e.epsilon ELSE 0 END), MAX(e.created_at) "
        "FROM privacy_budget_entries e "
        "LEFT JOIN dataset_versions v ON v.id = e.dataset_version_id "
        "LEFT JOIN privacy_budgets b ON b.dataset_id = e.dataset_id "
        "GROUP BY e.dataset_version_id"
    )
    op.drop_index("ix_privacy_budgets_project_id", table_name="privacy_budgets")
    op.drop_table("privacy_budgets")
    op.rename_table("privacy_budgets_by_version", "privacy_budgets")
    op.create_index("ix_privacy_budgets_project_id", "privacy_budgets", ["project_id"])
    with op.batch_alter_table("privacy_budget_entries") as batch:
        batch.drop_index("ix_privacy_budget_entries_dataset_id")
        batch.drop_column("dataset_id")
