"""Audit: ledger events with filters and keyset paging, an event's inclusion proof, the
latest checkpoint, verification of the live log, and the bundle `privet-audit verify`
checks offline. Each view calls the API's own handler with a console guard: the same
action, resource, decision and ledger event as `/v1/audit/...`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from privet.api.deps import Guard, QueryInt, RuntimeDep, SessionDep
from privet.api.routes import ledger as api_ledger
from privet.console.deps import ViewerDep, also, csrf_checked, page, permits, render
from privet.ledger import queries

router = APIRouter(prefix="/audit", dependencies=[Depends(csrf_checked)])

PAGE = 50


@router.get("", response_class=HTMLResponse)
def events(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("audit.events.read")],
    type: Annotated[str | None, Query(max_length=100)] = None,
    project: Annotated[str | None, Query(max_length=40)] = None,
    actor: Annotated[str | None, Query(max_length=40)] = None,
    start: Annotated[QueryInt, Query(ge=0)] = 0,
    limit: Annotated[QueryInt, Query(ge=1, le=500)] = PAGE,
) -> HTMLResponse:
    """Events in index order from ``start`` (keyset: the next page starts after the last
    index shown), filtered by type, project and actor."""
    filters = {"type": type or None, "project": project or None, "actor": actor or None}
    listed = api_ledger.list_events(
        session=session,
        identity=viewer,
        guard=guard,
        type=filters["type"],
        project=filters["project"],
        actor=filters["actor"],
        start=start,
        limit=limit,
    )
    checkpoint = None
    if permits(also(guard, "audit.checkpoint.read"), api_ledger.AUDIT_LOG):
        checkpoint = queries.get_checkpoint(session=session)
    return render(
        request,
        "audit.html",
        {
            "title": "Audit",
            "listed": listed,
            "filters": {k: v or "" for k, v in filters.items()},
            "limit": limit,
            "checkpoint": checkpoint,
        },
    )


@router.get("/proof", response_class=HTMLResponse)
def proof(
    request: Request,
    session: SessionDep,
    guard: Annotated[Guard, page("audit.proofs.read")],
    index: Annotated[QueryInt, Query(ge=0)],
) -> HTMLResponse:
    """An event's inclusion proof (an htmx fragment under the event)."""
    found = api_ledger.inclusion_proof(session=session, guard=guard, index=index)
    return render(request, "audit_proof.html", {"proof": found})


@router.post("/verify", response_class=HTMLResponse)
def verify(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("audit.verify")],
) -> HTMLResponse:
    """Check the live log (an htmx fragment): leaf hashes, roots, signatures."""
    report = api_ledger.verify(session=session, runtime=runtime, guard=guard)
    return render(request, "audit_verify.html", {"report": report})


@router.get("/export")
def export(
    session: SessionDep, runtime: RuntimeDep, guard: Annotated[Guard, page("audit.export")]
) -> FileResponse:
    """The bundle for `privet-audit verify` (the API's export, unchanged)."""
    return api_ledger.export(session=session, runtime=runtime, guard=guard)
