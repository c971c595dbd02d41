"""Data-subject requests: the request log (CCPA §7101), its sealed subject ids, objections,
and the project settings the RoPA reports.

The subject id and the requester are kept sealed with the request's own data key, so the
access report can show the subject their own id while the database holds no identifier
in plaintext, and the seal is crypto-shredded when the log entry expires. Carrying a
request out (access, erasure, objection) is ``privet.compliance.flows``; finding the
subject's data is ``privet.compliance.discovery``; erasure remedies are
``privet.compliance.remedies``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from privet import ledger
from privet.compliance.schemas import (
    DataSubjectRequestPublic,
    ProjectCompliancePublic,
    ProjectComplianceUpdate,
)
from privet.compliance.tables import (
    SEAL_KIND,
    SEAL_PROJECT,
    DataSubjectRequest,
    ProjectComplianceSettings,
    RequestState,
    RequestType,
)
from privet.crypto import ObjectRef, shred, unseal, unwrap_data_key
from privet.crypto.context import SealedStorage, ServiceRuntime
from privet.crypto.errors import DataKeyDestroyedError
from privet.datasets.pseudonym import pseudonymisation_key, pseudonymise
from privet.kit.errors import NotFoundError, PrivetError
from privet.kit.ids import utcnow
from privet.kit.paging import Keyset, Page
from privet.models.tables import ModelVersionFlag

SYSTEM_ACTOR = "system:compliance"


class SubjectIdUnavailableError(PrivetError):
    status = 410
    slug = "subject-id-shredded"
    title = "Subject id no longer held"


# --- helpers -------------------------------------------------------------------------------


def seal_ref(request_id: str) -> ObjectRef:
    """Where a request's sealed subject id and its data key are filed."""
    return ObjectRef(SEAL_KIND, request_id, SEAL_PROJECT)


def subject_pseudonym(runtime: ServiceRuntime, subject_id: str) -> str:
    return pseudonymise(pseudonymisation_key(runtime.settings), subject_id)


def public(row: DataSubjectRequest) -> DataSubjectRequestPublic:
    on_time = None
    if row.completed_at is not None:
        on_time = row.completed_at <= row.due_at
    return DataSubjectRequestPublic(
        id=row.id,
        type=row.type,
        regime=row.regime,
        state=row.state,
        channel=row.channel,
        purposes=list(row.purposes),
        received_at=row.received_at,
        acknowledge_due=row.acknowledge_due,
        acknowledged_at=row.acknowledged_at,
        due_at=row.due_at,
        completed_at=row.completed_at,
        retain_until=row.retain_until,
        submitted_by=row.submitted_by,
        outcome=row.outcome,
        on_time=on_time,
        result=dict(row.result),
    )


def record_event(
    session: Session,
    row: DataSubjectRequest,
    type: str,
    *,
    actor: str | None,
    details: dict[str, Any] | None = None,
    outcome: str = "ok",
) -> int:
    """A ledger event about a request; it names the subject by pseudonym only."""
    return ledger.emit(
        session,
        type=type,
        actor=actor,
        objects={"data_subject_request": row.id},
        digests={"subject": row.subject_digest},
        outcome=outcome,
        details={"request_type": row.type, "regime": row.regime, **(details or {})},
    )


def unseal_subject(
    session: Session, *, runtime: SealedStorage, row: DataSubjectRequest
) -> dict[str, str]:
    """The sealed {subject_id, requester} of a request (only for the subject's own report)."""
    if row.sealed is None:
        raise SubjectIdUnavailableError(f"request {row.id}: its subject id was shredded")
    ref = seal_ref(row.id)
    try:
        handle = unwrap_data_key(session=session, provider=runtime.key_provider, ref=ref)
    except DataKeyDestroyedError:
        raise SubjectIdUnavailableError(f"request {row.id}: its subject id was shredded") from None
    data: dict[str, str] = json.loads(
        unseal(row.sealed, data_key=handle.key, key_ref=handle.key_id, ref=ref)
    )
    return data


# --- objections ---------------------------------------------------------------------------------


def has_objection(session: Session, *, subject_digest: str, purpose: str | None = None) -> bool:
    """Whether the subject (by pseudonym) objected to processing for ``purpose`` (or all)."""
    rows = session.exec(
        select(DataSubjectRequest).where(
            DataSubjectRequest.subject_digest == subject_digest,
            DataSubjectRequest.type == RequestType.objection.value,
            DataSubjectRequest.state == RequestState.completed.value,
        )
    ).all()
    return any(not r.purposes or purpose is None or purpose in r.purposes for r in rows)


def objecting_subjects(
    session: Session, *, subject_digests: Iterable[str], purpose: str | None
) -> set[str]:
    """The pseudonyms among ``subject_digests`` whose subject objected to processing for
    ``purpose`` (or for every purpose): one query for a whole predict batch."""
    wanted = sorted(set(subject_digests))
    if not wanted:
        return set()
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        rows = session.exec(
            select(DataSubjectRequest).where(
                col(DataSubjectRequest.subject_digest).in_(wanted[start : start + 500]),
                DataSubjectRequest.type == RequestType.objection.value,
                DataSubjectRequest.state == RequestState.completed.value,
            )
        ).all()
        found |= {
            r.subject_digest
            for r in rows
            if r.subject_digest and (not r.purposes or purpose is None or purpose in r.purposes)
        }
    return found


# --- reads -------------------------------------------------------------------------------------


class RequestFilters(TypedDict, total=False):
    """What the request log can be filtered by (``received_at`` window: since inclusive,
    until exclusive)."""

    type: str | None
    state: str | None
    since: datetime | None
    until: datetime | None


def list_requests(
    session: Session, *, limit: int = 1000, **filters: Unpack[RequestFilters]
) -> Sequence[DataSubjectRequest]:
    """Every request of the window, newest first, up to ``limit`` (the request report;
    the API pages with ``page_requests``)."""
    query = _requests(filters)
    return session.exec(query.order_by(*REQUEST_ORDER.order_by()).limit(limit)).all()


def _requests(filters: RequestFilters) -> SelectOfScalar[DataSubjectRequest]:
    query = select(DataSubjectRequest)
    if kind := filters.get("type"):
        query = query.where(DataSubjectRequest.type == kind)
    if state := filters.get("state"):
        query = query.where(DataSubjectRequest.state == state)
    if since := filters.get("since"):
        query = query.where(col(DataSubjectRequest.received_at) >= since)
    if until := filters.get("until"):
        query = query.where(col(DataSubjectRequest.received_at) < until)
    return query


REQUEST_ORDER = Keyset(
    columns=(col(DataSubjectRequest.received_at), col(DataSubjectRequest.id)),
    kinds=(datetime, str),
    descending=True,
)
"""The request log lists newest first; (received_at, id) is the keyset (migration 0017)."""


def requests_statement(
    *, after: str | None = None, limit: int = 100, **filters: Unpack[RequestFilters]
) -> SelectOfScalar[DataSubjectRequest]:
    """The page query of ``page_requests`` (the plan tests EXPLAIN it)."""
    return REQUEST_ORDER.page(_requests(filters), after=after, limit=limit)


def page_requests(
    session: Session,
    *,
    after: str | None = None,
    limit: int = 100,
    **filters: Unpack[RequestFilters],
) -> Page[DataSubjectRequest]:
    """A page of the request log, newest first, from the cursor ``after``."""
    rows = session.exec(requests_statement(after=after, limit=limit, **filters)).all()
    return REQUEST_ORDER.split(rows, limit=limit, key=lambda r: (r.received_at, r.id))


def get_request(session: Session, *, request_id: str) -> DataSubjectRequest:
    row = session.get(DataSubjectRequest, request_id)
    if row is None:
        raise NotFoundError(f"data-subject request {request_id!r} does not exist")
    return row


def flags_for(session: Session, *, model_version_id: str) -> Sequence[ModelVersionFlag]:
    return session.exec(
        select(ModelVersionFlag)
        .where(ModelVersionFlag.model_version_id == model_version_id)
        .order_by(col(ModelVersionFlag.created_at))
    ).all()


def sweep_request_log(
    session: Session, *, now: datetime | None = None, actor: str = SYSTEM_ACTOR
) -> list[str]:
    """Shred the sealed subject id of every request past its log retention; the entry
    itself (dates, type, outcome, pseudonym) stays."""
    due = session.exec(
        select(DataSubjectRequest).where(
            col(DataSubjectRequest.retain_until) <= (now or utcnow()),
            col(DataSubjectRequest.sealed).is_not(None),
        )
    ).all()
    for row in due:
        shred(session=session, ref=seal_ref(row.id))
        row.sealed = None
        session.add(row)
        record_event(
            session, row, "dsr.subject_shredded", actor=None, details={"reason": "retention"}
        )
    return [r.id for r in due]


# --- project settings for the RoPA ---------------------------------------------------------


def get_project_settings(session: Session, *, project_id: str) -> ProjectCompliancePublic:
    row = session.get(ProjectComplianceSettings, project_id)
    if row is None:
        return ProjectCompliancePublic(project_id=project_id)
    return ProjectCompliancePublic.model_validate(row.model_dump())


def put_project_settings(
    session: Session, *, project_id: str, data: ProjectComplianceUpdate, actor: str
) -> ProjectCompliancePublic:
    row = session.get(ProjectComplianceSettings, project_id)
    values = data.model_dump()
    if row is None:
        row = ProjectComplianceSettings(
            project_id=project_id, updated_at=utcnow(), updated_by=actor, **values
        )
    else:
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        row.updated_by = actor
    session.add(row)
    ledger.emit(
        session,
        type="project.compliance_updated",
        actor=actor,
        project=project_id,
        objects={"project": project_id},
        details={"fields": sorted(k for k, v in values.items() if v)},
    )
    session.flush()
    return ProjectCompliancePublic.model_validate(row.model_dump())
