"""Indexes for the console's model-version lists (issue 20): Models, Home and Monitoring
page the versions of all the viewer's projects newest first, keyset (created_at, id)
(privet.models.listing), optionally in some states. No index served that order: every page
read and sorted all the versions of the viewer's projects.

(created_at, id) serves the order whatever the projects (the project is a filter on the
walk; a viewer of a few small projects is read through ix_model_versions_project_id and
their few versions sorted, the planner's choice); (state, created_at, id) serves a state
filter (Home's candidates). An index leading with project_id would not serve a page across
projects: PostgreSQL reads every match of an IN list and sorts them.

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
)


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, "model_versions", columns)


def downgrade() -> None:
    for name, _ in reversed(INDEXES):
        op.drop_index(name, table_name="model_versions")
