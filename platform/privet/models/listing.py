"""Model versions across projects, a keyset page at a time, with what a list shows of each
(model name, erasure flags) read for the whole page in two queries: the console's Models
and Home pages list thousands of versions without a query per row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from privet.kit.paging import Keyset, Page
from privet.models.schemas import ErasureFlagPublic, ModelVersionDetail
from privet.models.tables import Model, ModelVersion, ModelVersionFlag

VERSION_ORDER = Keyset(
    columns=(col(ModelVersion.created_at), col(ModelVersion.id)),
    kinds=(datetime, str),
    descending=True,
)
"""Versions list newest first; (created_at, id) is the keyset, served by the indexes of
migration 0025 (docs/SCALING.md, "Lists that stay fast")."""


def versions_statement(
    *,
    project_ids: Sequence[str],
    states: Sequence[str] = (),
    after: str | None = None,
    limit: int = 20,
) -> SelectOfScalar[ModelVersion]:
    """The page query of ``versions_page`` (the plan tests EXPLAIN it)."""
    query = select(ModelVersion).where(col(ModelVersion.project_id).in_(list(project_ids)))
    if states:
        query = query.where(col(ModelVersion.state).in_(list(states)))
    return VERSION_ORDER.page(query, after=after, limit=limit)


def versions_page(
    session: Session,
    *,
    project_ids: Sequence[str],
    states: Sequence[str] = (),
    after: str | None = None,
    limit: int = 20,
) -> Page[ModelVersion]:
    """A page of the versions of ``project_ids`` (in ``states``, when given), newest first."""
    stmt = versions_statement(project_ids=project_ids, states=states, after=after, limit=limit)
    rows = session.exec(stmt).all()
    return VERSION_ORDER.split(rows, limit=limit, key=lambda v: (v.created_at, v.id))


def details_of(session: Session, versions: Sequence[ModelVersion]) -> list[ModelVersionDetail]:
    """Each version as `service.version_detail` shows it: the names and the flags of the
    whole page in one query each."""
    model_ids = {v.model_id for v in versions}
    names = {
        m.id: m.name for m in session.exec(select(Model).where(col(Model.id).in_(model_ids))).all()
    }
    flags: dict[str, list[ErasureFlagPublic]] = {v.id: [] for v in versions}
    for flag in session.exec(
        select(ModelVersionFlag)
        .where(col(ModelVersionFlag.model_version_id).in_(list(flags)))
        .order_by(col(ModelVersionFlag.created_at), col(ModelVersionFlag.id))
    ).all():
        flags[flag.model_version_id].append(
            ErasureFlagPublic.model_validate(flag, from_attributes=True)
        )
    return [
        ModelVersionDetail.model_validate(
            {
                **v.model_dump(),
                "model_name": names.get(v.model_id, ""),
                "erasure_flags": flags[v.id],
            }
        )
        for v in versions
    ]
