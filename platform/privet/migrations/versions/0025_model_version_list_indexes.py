"""Indexes for the console's model-version lists (issue 20): Models, Home and Monitoring
page the versions of all the viewer's projects newest first, keyset (created_at, id)
(privet.models.listing), optionally in some states. No index served that order: every page
read and sorted all the versions of the viewer's projects.

(created_at, id) serves the order across projects (the projects a filter on the walk: an
index leading with project_id cannot, PostgreSQL reads every match of an IN list and
sorts them); (state, created_at, id) a state filter (Home's candidates); (project_id,
created_at, id) one project, or a few small ones (their matches sorted), and replaces the
single-column project_id index it starts with (SQLite, offered both for a viewer of one
busy project, took the narrow one and sorted all its versions).

Plain CREATE INDEX holds writes to model_versions while it builds (seconds at 10^5
versions); ANALYZE afterwards.

Revision ID: 0025_model_version_list_indexes
Revises: 0024_base_model_licences
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025_model_version_list_indexes"
down_revision: str | None = "0024_base_model_licences"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

INDEXES: tuple[tuple[str, list[str]], ...] = (
    ("ix_model_versions_created", ["created_at", "id"]),
    ("ix_model_versions_state_created", ["state", "created_at", "id"]),
    ("ix_model_versions_project_created", ["project_id", "created_at", "id"]),
)
REPLACED = ("ix_model_versions_project_id", ["project_id"])


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, "model_versions", columns)
    op.drop_index(REPLACED[0], table_name="model_versions")


def downgrade() -> None:
    op.create_index(REPLACED[0], "model_versions", REPLACED[1])
    for name, _ in reversed(INDEXES):
        op.drop_index(name, table_name="model_versions")
