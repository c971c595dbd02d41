"""The recipe a training job runs with (issue 22): every hyperparameter the `auto` recipe
chose or the caller set, with the reason for each, and the public facts it was chosen
from. Jobs admitted before this have none (their params were all given or defaulted).

Revision ID: 0016_job_recipe
Revises: 0015_auth_epoch
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_job_recipe"
down_revision: str | None = "0015_auth_epoch"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("recipe", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("recipe")
