"""Indexes for keyset paging (issue 23): one per filter of every list that grows with
traffic, each ending in the list's order key, so that a page is an index range already in
order (no sort, no OFFSET). Single-column indexes that a new one starts with (the
ledger's type and project, the project of jobs and of queue items) are dropped: the new
index serves the same lookups, and a planner offered both picked the old one and sorted.

On a large database the index builds take a while and hold writes to the ledger and
job tables (plain CREATE INDEX): run it in a maintenance window, then ANALYZE.

Revision ID: 0017_list_indexes
Revises: 0016_job_recipe
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_list_indexes"
down_revision: str | None = "0016_job_recipe"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

INDEXES: tuple[tuple[str, str, list[str]], ...] = (
    ("ix_ledger_leaves_type_idx", "ledger_leaves", ["type", "idx"]),
    ("ix_ledger_leaves_project_idx", "ledger_leaves", ["project", "idx"]),
    ("ix_ledger_leaves_actor_idx", "ledger_leaves", ["actor", "idx"]),
    ("ix_training_jobs_project_created", "training_jobs", ["project_id", "created_at", "id"]),
    (
        "ix_training_jobs_project_state_created",
        "training_jobs",
        ["project_id", "state", "created_at", "id"],
    ),
    ("ix_data_subject_requests_received", "data_subject_requests", ["received_at", "id"]),
    (
        "ix_data_subject_requests_type_received",
        "data_subject_requests",
        ["type", "received_at", "id"],
    ),
    (
        "ix_data_subject_requests_state_received",
        "data_subject_requests",
        ["state", "received_at", "id"],
    ),
    (
        "ix_prediction_decisions_project_created",
        "prediction_decisions",
        ["project_id", "created_at", "prediction_id"],
    ),
)
REPLACED = (
    ("ix_ledger_leaves_type", "ledger_leaves", ["type"]),
    ("ix_ledger_leaves_project", "ledger_leaves", ["project"]),
    ("ix_training_jobs_project_id", "training_jobs", ["project_id"]),
    ("ix_prediction_decisions_project_id", "prediction_decisions", ["project_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    for name, table, _ in REPLACED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, columns in REPLACED:
        op.create_index(name, table, columns)
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
