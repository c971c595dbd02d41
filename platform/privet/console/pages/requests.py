"""Data-subject requests (DPO, data steward): the intake form, the request log with its
statutory deadlines (open ones past due and ones answered late are marked), a request's
page with what was found and done (for an erasure: the rows erased and the model versions
flagged), and the answer to the request in each format. Every view and action calls the
API's own handler with the console guard (`dsr.list`, `dsr.submit`, `dsr.read`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from privet.api.deps import Guard, RuntimeDep, SessionDep
from privet.api.paging import AfterQuery
from privet.api.routes import compliance as api_compliance
from privet.compliance.schemas import DataSubjectRequestCreate, DataSubjectRequestPublic
from privet.compliance.tables import Channel, Regime, RequestType
from privet.console.deps import ViewerDep, also, as_attachment, csrf_checked, page, permits, render
from privet.kit.errors import InvalidInputError
from privet.kit.ids import utcnow

router = APIRouter(prefix="/requests", dependencies=[Depends(csrf_checked)])

PAGE = 50
OPEN_STATES = ("received", "acknowledged")


def _timeliness(r: DataSubjectRequestPublic) -> str | None:
    """'overdue' (open past its deadline) or 'late' (answered after it); None: on time."""
    if r.state in OPEN_STATES and r.due_at < utcnow():
        return "overdue"
    if r.on_time is False:
        return "late"
    return None


@router.get("", response_class=HTMLResponse)
def log(
    request: Request,
    response: Response,
    session: SessionDep,
    guard: Annotated[Guard, page("dsr.list")],
    type: Annotated[Literal["access", "erasure", "objection"] | None, Query()] = None,
    after: AfterQuery = None,
) -> HTMLResponse:
    """The request log, newest first, with each deadline; the intake form for those who
    may submit."""
    listed = api_compliance.list_requests(
        request=request,
        response=response,
        session=session,
        guard=guard,
        type=type,
        after=after,
        limit=PAGE,
    )
    rows = [{"r": r, "mark": _timeliness(r)} for r in listed]
    link = response.headers.get("link", "")  # the API's next page, on this same path
    next_link = link[1 : link.index(">")] if link.startswith("<") else None
    can_submit = permits(also(guard, "dsr.submit"), api_compliance.PLATFORM)
    return render(
        request,
        "requests.html",
        {
            "title": "Data-subject requests",
            "rows": rows,
            "type": type or "",
            "next_link": next_link,
            "can_submit": can_submit,
            "today": utcnow().date().isoformat(),
            "types": [t.value for t in RequestType],
            "regimes": [r.value for r in Regime],
            "channels": [c.value for c in Channel],
        },
    )


@router.post("")
def submit(
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("dsr.submit")],
    type: Annotated[str, Form(max_length=20)],
    subject_id: Annotated[str, Form(max_length=200)],
    regime: Annotated[str, Form(max_length=20)] = "gdpr",
    requester: Annotated[str, Form(max_length=200)] = "data subject",
    channel: Annotated[str, Form(max_length=20)] = "web_form",
    received_date: Annotated[str, Form(max_length=10)] = "",
    purposes: Annotated[str, Form(max_length=2000)] = "",
) -> RedirectResponse:
    """Log the request and carry it out (the API's handler): then its page."""
    fields: dict[str, Any] = {
        "type": type,
        "subject_id": subject_id.strip(),
        "regime": regime,
        "requester": requester.strip() or "data subject",
        "channel": channel,
        "purposes": [p.strip() for p in purposes.split(",") if p.strip()],
    }
    try:
        if received_date:
            fields["received_date"] = date.fromisoformat(received_date)
        body = DataSubjectRequestCreate.model_validate(fields)
    except (ValueError, ValidationError) as error:
        raise InvalidInputError(f"the request was not logged: {_why(error)}") from None
    created = api_compliance.submit_request(
        body=body, session=session, identity=viewer, runtime=runtime, guard=guard
    )
    return RedirectResponse(f"/requests/{created.id}", status_code=303)


def _why(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'request'}: "
            + str(e.get("msg", "")).removeprefix("Value error, ")
            for e in error.errors()
        )
    return f"received_date: {error}"


@router.get("/{request_id}", response_class=HTMLResponse)
def detail(
    request: Request,
    request_id: api_compliance.RequestIdP,
    session: SessionDep,
    guard: Annotated[Guard, page("dsr.read")],
) -> HTMLResponse:
    """What was asked, its deadlines, what was found and what was done."""
    found = api_compliance.get_request(request_id=request_id, session=session, guard=guard)
    return render(
        request,
        "request.html",
        {"title": f"Request {found.id}", "r": found, "mark": _timeliness(found)},
    )


@router.get("/{request_id}/report")
def report(
    request_id: api_compliance.RequestIdP,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("dsr.read")],
    format: api_compliance.FormatQ = "html",
) -> Response:
    """The answer to the request (the API's report, its digest in the ledger), always as
    a download: the console's CSP stays on every page it serves."""
    answer = api_compliance.request_report(
        request_id=request_id,
        session=session,
        identity=viewer,
        runtime=runtime,
        guard=guard,
        format=format,
    )
    return as_attachment(answer)
