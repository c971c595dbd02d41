"""Free text sealed at rest: review and contest reasons, the text of a job's failure; the
DSR channel an enumeration.

- ``prediction_reviews.reason`` (plaintext) is replaced by ``reason_sealed`` (sealed with
  a per-review data key, shredded when the prediction's subject is erased) and
  ``reason_shredded_at``. Reasons already stored in plaintext are dropped, not carried
  over: a migration holds no master key to seal them with (export them first if needed).
- ``training_jobs`` gains ``error_code`` (an enumeration, the only cause the ledger
  records) and ``error_sealed`` (the failure's text, sealed). The plaintext ``reason`` of
  failed jobs written before this revision (it quoted the exception) is replaced by a
  summary.
- ``data_subject_requests.channel``: values outside the enumeration become ``other``.

Revision ID: 0010_freetext_sealed
Revises: 0009_reference_status
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from privet.kit.types import UTCDateTime

revision: str = "0010_freetext_sealed"
down_revision: str | None = "0009_reference_status"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

CHANNELS = ("email", "web_form", "letter", "phone", "in_person", "api", "other")


def upgrade() -> None:
    with op.batch_alter_table("prediction_reviews") as batch:
        batch.add_column(sa.Column("reason_sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("reason_shredded_at", UTCDateTime(), nullable=True))
        batch.drop_column("reason")
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("error_code", sa.String(40), nullable=True))
        batch.add_column(sa.Column("error_sealed", sa.LargeBinary(), nullable=True))
    jobs = sa.table(
        "training_jobs",
        sa.column("state", sa.String),
        sa.column("reason", sa.String),
        sa.column("error_code", sa.String),
    )
    op.execute(
        jobs.update()
        .where(jobs.c.state == "failed", ~jobs.c.reason.like("worker %"))
        .values(
            reason="failed (the error text of jobs before this upgrade is not kept)",
            error_code="training_error",
        )
    )
    requests = sa.table("data_subject_requests", sa.column("channel", sa.String))
    op.execute(requests.update().where(requests.c.channel.not_in(CHANNELS)).values(channel="other"))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("error_sealed")
        batch.drop_column("error_code")
    with op.batch_alter_table("prediction_reviews") as batch:
        batch.add_column(sa.Column("reason", sa.String(2000), nullable=False, server_default=""))
        batch.drop_column("reason_shredded_at")
        batch.drop_column("reason_sealed")
