"""Base-model licences (issue 21): `base_models.license` holds only an SPDX expression the
SPDX License List knows (normalised, e.g. `apache-2.0` → `Apache-2.0`), and may be NULL;
a licence with no SPDX id moves to the new `licence_text` (free text, marked as such).

Existing rows are sorted with the check the service makes (privet.basemodels.licences,
repeated here so that this revision does not change with the code): a valid expression is
normalised in place, anything else moves to `licence_text`. The downgrade puts the text
back into `license`.

Revision ID: 0024_base_model_licences
Revises: 0023_console_oidc
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_base_model_licences"
down_revision: str | None = "0023_console_oidc"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TABLE = sa.table(
    "base_models",
    sa.column("id", sa.String),
    sa.column("license", sa.Text),
    sa.column("licence_text", sa.Text),
)


def _sorted(value: str) -> tuple[str | None, str | None]:
    """(SPDX expression, text) of a licence recorded before this revision."""
    from license_expression import get_spdx_licensing

    info = get_spdx_licensing().validate(value.strip(), strict=True)
    if info.errors or not info.normalized_expression:
        return None, value
    return str(info.normalized_expression), None


def sort_licences(conn: sa.Connection) -> None:
    """Sort every row's licence (the tests' PostgreSQL reseed calls it after putting back
    the shipped entry of migration 0019)."""
    rows = conn.execute(sa.select(TABLE.c.id, TABLE.c.license)).all()
    for row_id, value in rows:
        if value is None:
            continue
        spdx, text = _sorted(str(value))
        conn.execute(
            sa.update(TABLE).where(TABLE.c.id == row_id).values(license=spdx, licence_text=text)
        )


def upgrade() -> None:
    with op.batch_alter_table("base_models") as batch:
        batch.add_column(sa.Column("licence_text", sa.Text(), nullable=True))
        batch.alter_column("license", existing_type=sa.Text(), nullable=True)
    sort_licences(op.get_bind())


def downgrade() -> None:
    conn = op.get_bind()
    conn.execute(
        sa.update(TABLE)
        .where(TABLE.c.license.is_(None))
        .values(license=sa.func.coalesce(TABLE.c.licence_text, ""))
    )
    with op.batch_alter_table("base_models") as batch:
        batch.alter_column("license", existing_type=sa.Text(), nullable=False)
        batch.drop_column("licence_text")
