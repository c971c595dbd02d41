"""Reports: every kind of the reports registry the viewer may read (per scope: platform-
wide or one of their projects), a preview rendered in the page, and the document in each
of its formats. The preview and each download take the API's own decision
(`report.<kind>.read` on the Report) and are recorded as issued (`report.issued`, with the
document's digest); downloads are the API's handlers, sent as attachments so that no
document is ever shown under a weaker CSP than the console's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import islice
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse

from privet.api.deps import Resource, RuntimeDep
from privet.api.routes import compliance as api_compliance
from privet.auth import service as auth_service
from privet.console.deps import also, as_attachment, csrf_checked, permits, render
from privet.console.listing import ListingDep
from privet.db import read_session
from privet.ledger.sequencer import integrate_now
from privet.policy.actions import REPORT_ACTIONS
from privet.reports import REGISTRY, get_kind
from privet.reports.issue import issue_whole
from privet.reports.model import cell

router = APIRouter(prefix="/reports", dependencies=[Depends(csrf_checked)])

PREVIEW_ROWS = 200
Id = Annotated[str | None, Query(max_length=40)]


@dataclass(frozen=True)
class Params:
    """A report's query parameters as the form sends them (empty fields: unset)."""

    project: str | None
    model_version: str | None
    dataset_version: str | None
    since: date | None
    until: date | None
    principal: str | None
    action: str | None
    outcome: Literal["allow", "deny"] | None
    type: Literal["access", "erasure", "objection"] | None

    def for_api(self) -> dict[str, Any]:
        def day(d: date | None, at: time) -> datetime | None:
            return datetime.combine(d, at, tzinfo=UTC) if d else None

        return {
            "project": self.project or None,
            "model_version": self.model_version or None,
            "dataset_version": self.dataset_version or None,
            "since": day(self.since, time.min),
            "until": day(self.until, time.max),
            "principal": self.principal or None,
            "action_": self.action or None,
            "outcome": self.outcome,
            "type": self.type,
        }


def _params(
    project: Id = None,
    model_version: Id = None,
    dataset_version: Id = None,
    since: Annotated[date | None, Query()] = None,
    until: Annotated[date | None, Query()] = None,
    principal: Id = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    outcome: Annotated[Literal["allow", "deny"] | None, Query()] = None,
    type: Annotated[Literal["access", "erasure", "objection"] | None, Query()] = None,
) -> Params:
    return Params(
        project or None,
        model_version or None,
        dataset_version or None,
        since,
        until,
        principal or None,
        action or None,
        outcome,
        type,
    )


ParamsDep = Annotated[Params, Depends(_params)]


@router.get("", response_class=HTMLResponse)
def kinds(view: ListingDep) -> HTMLResponse:
    """Each kind with the scopes the viewer may read it in (each scope one decision)."""
    projects = auth_service.list_projects(view.session, viewer=view.viewer)
    shown = []
    for name, spec in REGISTRY.items():
        asked = also(view.guard, REPORT_ACTIONS[name].value)
        scopes = [("", "platform-wide")] if permits(asked, _report(name, None)) else []
        scopes += [(p.id, p.name) for p in projects if permits(asked, _report(name, p.id))]
        if scopes:
            shown.append({"spec": spec, "scopes": scopes})
    return render(view.request, "reports.html", {"title": "Reports", "kinds": shown})


def _report(kind: str, project: str | None) -> Resource:
    return Resource(type="Report", id=kind, project_id=project, attrs={"kind": kind})


@router.get("/{kind}/preview", response_class=HTMLResponse)
def preview(view: ListingDep, kind: str, runtime: RuntimeDep, params: ParamsDep) -> HTMLResponse:
    """The report rendered in the page (its first rows per table), issued as HTML: signed
    in to the console, then the kind's own decision."""
    request, session, viewer = view.request, view.session, view.viewer
    spec = get_kind(kind)
    guard = also(view.guard, REPORT_ACTIONS[kind].value)
    asked = params.for_api()
    project = api_compliance.authorize_report(
        session, viewer, guard, spec, project=asked["project"], model_version=asked["model_version"]
    )
    session.commit()  # the decision is durable before the long read, as on the API
    integrate_now(runtime.engine)
    built = {**asked, "project": project, "action": asked.pop("action_")}
    with read_session(runtime.engine) as reader:
        report = spec.build(reader, runtime, actor=viewer.principal_id, params=built)
        _content, digest = issue_whole(
            runtime.engine, report, "html", actor=viewer.principal_id, project=project
        )
        tables = [
            {
                "title": t.title,
                "intro": t.intro,
                "empty": t.empty,
                "columns": [label for _k, label in t.columns],
                "rows": [
                    [cell(r.get(k)) for k, _l in t.columns] for r in islice(t.rows, PREVIEW_ROWS)
                ],
                "count": len(t.rows),
            }
            for t in report.tables
        ]
    query = request.url.query
    return render(
        request,
        "report.html",
        {
            "title": report.title,
            "report": report,
            "facts": [(label, cell(value)) for label, value in report.facts],
            "tables": tables,
            "digest": digest,
            "formats": spec.formats,
            "query": query,
            "preview_rows": PREVIEW_ROWS,
        },
    )


@router.get("/{kind}/download")
def download(
    view: ListingDep,
    kind: str,
    runtime: RuntimeDep,
    params: ParamsDep,
    format: api_compliance.FormatQ = "json",
) -> Response:
    """The API's handler for the kind (signed in to the console, then the kind's own
    decision), the document as an attachment."""
    get_kind(kind)
    handler = api_compliance.REPORT_HANDLERS[kind]
    answer = handler(
        session=view.session,
        identity=view.viewer,
        runtime=runtime,
        guard=also(view.guard, REPORT_ACTIONS[kind].value),
        format=format,
        **params.for_api(),
    )
    return as_attachment(answer)
