"""The audit ledger over HTTP: checkpoint, events, proofs, export, verification.

Whole-log views are platform-level (an auditor bound platform-wide); the event listing may
be scoped to one project, where that project's auditors may read it.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from privet.api.deps import Guard, IdentityDep, QueryInt, Resource, RuntimeDep, SessionDep, action
from privet.api.routing import OneHopRoute
from privet.auth import service as auth_service
from privet.db import read_session
from privet.ledger import queries
from privet.ledger.export import export_bundle
from privet.ledger.sequencer import integrate_now
from privet.ledger.verify import LedgerVerifyReport, verify_ledger

router = APIRouter(route_class=OneHopRoute, prefix="/v1/audit", tags=["audit"])

AUDIT_LOG = Resource(type="AuditLog", id="ledger")


@router.get("/checkpoint", response_model=queries.CheckpointPublic)
def get_checkpoint(
    session: SessionDep, guard: Annotated[Guard, action("audit.checkpoint.read")]
) -> queries.CheckpointPublic:
    """The latest signed checkpoint. Keep its note: later logs must be consistent with it."""
    guard.check(AUDIT_LOG)
    return queries.get_checkpoint(session=session)


@router.get("/events", response_model=queries.EventPage)
def list_events(
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("audit.events.read")],
    type: Annotated[str | None, Query(max_length=100)] = None,
    object_id: Annotated[str | None, Query(max_length=100)] = None,
    project: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=40)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    start: Annotated[QueryInt, Query(ge=0)] = 0,
    limit: Annotated[QueryInt, Query(ge=1, le=queries.MAX_PAGE)] = 100,
) -> queries.EventPage:
    """Integrated events in index order; filter by type, object, project, actor, time."""
    if project is not None:
        auth_service.get_project(session, project_id=project, viewer=identity)
        guard.check(Resource(type="AuditLog", id="ledger", project_id=project))
    else:
        guard.check(AUDIT_LOG)
    return queries.list_events(
        session=session,
        type=type,
        object_id=object_id,
        project=project,
        actor=actor,
        since=since,
        until=until,
        start=start,
        limit=limit,
    )


@router.get("/proofs/inclusion", response_model=queries.InclusionProofPublic)
def inclusion_proof(
    session: SessionDep,
    guard: Annotated[Guard, action("audit.proofs.read")],
    index: Annotated[QueryInt | None, Query(ge=0)] = None,
    entry_id: Annotated[QueryInt | None, Query(ge=1)] = None,
    tree_size: Annotated[QueryInt | None, Query(ge=0)] = None,
) -> queries.InclusionProofPublic:
    """Proof that leaf `index` (or the leaf of `entry_id`) is in the tree of `tree_size`."""
    guard.check(AUDIT_LOG)
    return queries.get_inclusion_proof(
        session=session, index=index, entry_id=entry_id, tree_size=tree_size
    )


@router.get("/proofs/consistency", response_model=queries.ConsistencyProofPublic)
def consistency_proof(
    session: SessionDep,
    guard: Annotated[Guard, action("audit.proofs.read")],
    size1: Annotated[QueryInt, Query(ge=0)],
    size2: Annotated[QueryInt | None, Query(ge=0)] = None,
) -> queries.ConsistencyProofPublic:
    """Proof that the tree of `size2` extends the tree of `size1`."""
    guard.check(AUDIT_LOG)
    return queries.get_consistency_proof(session=session, size1=size1, size2=size2)


@router.get("/export", response_class=FileResponse)
def export(
    session: SessionDep, runtime: RuntimeDep, guard: Annotated[Guard, action("audit.export")]
) -> FileResponse:
    """A bundle (events, checkpoints, public key, consistency proofs) that
    `privet-audit verify` checks offline. Events hold no personal data."""
    guard.check(AUDIT_LOG)
    session.commit()  # the decision is durable; release the write lock before the long read
    integrate_now(runtime.engine)
    workdir = Path(tempfile.mkdtemp(prefix="export-", dir=runtime.settings.home))
    out = workdir / "privet-audit.bundle"
    with read_session(runtime.engine) as reader:
        result = export_bundle(session=reader, out=out)

    def cleanup() -> None:
        out.unlink(missing_ok=True)
        workdir.rmdir()

    return FileResponse(
        out,
        media_type="application/x-ndjson",
        filename=f"privet-audit-{result.tree_size}.jsonl",
        background=BackgroundTask(cleanup),
    )


@router.post(":verify", response_model=LedgerVerifyReport)
def verify(
    session: SessionDep, runtime: RuntimeDep, guard: Annotated[Guard, action("audit.verify")]
) -> LedgerVerifyReport:
    """Check the live log (leaf hashes, roots, signatures, checkpoint consistency).
    An auditor who distrusts the server verifies an export offline instead."""
    guard.check(AUDIT_LOG)
    session.commit()  # the decision is durable; release the write lock before the long read
    integrate_now(runtime.engine)
    with read_session(runtime.engine) as reader:
        return verify_ledger(session=reader)
