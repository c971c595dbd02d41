"""Data-subject requests and compliance reports.

- ``POST /v1/data-subject-requests`` (dsr.submit), ``GET`` list (dsr.list) and detail
  (dsr.read); ``GET /v1/data-subject-requests/{id}/report`` (dsr.read): the answer to the
  request (for access: what the platform holds about the subject) in any format.
- ``GET /v1/reports/{kind}?format=json|csv|html|pdf`` for each kind of the reports
  registry (``privet.reports.REGISTRY``): one route per kind, each its own action
  ``report.<kind>.read``.
- ``GET/PUT /v1/projects/{id}/compliance-settings`` (project.read / project.update):
  controller, DPO, subject categories and recipients for the RoPA.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from privet import ledger
from privet.api.deps import Guard, IdentityDep, Resource, RuntimeDep, SessionDep, action
from privet.api.paging import NEXT_LINK, AfterQuery, LimitQuery, link_next
from privet.api.routing import OneHopRoute
from privet.auth import service as auth_service
from privet.auth.identity import Identity
from privet.compliance import flows, service
from privet.compliance.schemas import (
    DataSubjectRequestCreate,
    DataSubjectRequestPublic,
    ProjectCompliancePublic,
    ProjectComplianceUpdate,
)
from privet.db import read_session
from privet.jobs.admission import Authorize, PolicyVerdict
from privet.kit.errors import NotFoundError
from privet.ledger.sequencer import integrate_now
from privet.policy.actions import REPORT_ACTIONS
from privet.reports import (
    MEDIA_TYPES,
    REGISTRY,
    Report,
    ReportKind,
    build_request_report,
    filename,
)
from privet.reports.issue import issue_whole, stream_report
from privet.reports.scope import model_version_project
from privet.runtime import Runtime

router = APIRouter(route_class=OneHopRoute, tags=["compliance"])

PLATFORM = Resource(type="Platform", id="privet")
FormatQ = Annotated[Literal["json", "csv", "html", "pdf"], Query()]
# An id the ledger can record (the authorization decision names it): anything else is a 422,
# not a 500 from the ledger refusing the decision event.
RequestIdP = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")]


def _retrain_policy(session: Any, runtime: Runtime) -> Authorize:
    """Policy decisions for retraining jobs an erasure submits on behalf of the original
    submitter; each decision is recorded in the ledger like the gateway's own."""

    def authorize(identity: Identity, project_id: str, context: dict[str, Any]) -> PolicyVerdict:
        resource = Resource(type="Project", id=project_id, project_id=project_id)
        decision = runtime.authorizer.decide(
            identity=identity, action="training_job.submit", resource=resource, context=context
        )
        ledger.emit(
            session,
            type="auth.decision",
            actor=identity.principal_id,
            project=project_id,
            objects={"project": project_id},
            outcome="allow" if decision.allowed else "deny",
            details={
                "action": "training_job.submit",
                "policies": list(decision.policy_ids),
                "policy_version": decision.policy_version,
                "on_behalf": "erasure-retrain",
            },
        )
        return PolicyVerdict(
            allowed=decision.allowed,
            policies=list(decision.policy_ids),
            policy_version=decision.policy_version,
        )

    return authorize


@router.post(
    "/v1/data-subject-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=DataSubjectRequestPublic,
)
def submit_request(
    body: DataSubjectRequestCreate,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("dsr.submit")],
) -> DataSubjectRequestPublic:
    """Log a data-subject request, acknowledge it and carry it out across every project:
    access (report prepared), erasure (rows erased, old versions shredded, affected model
    versions flagged with the policy's remedy) or objection (recorded)."""
    guard.check(PLATFORM, {})
    row = flows.submit_request(
        session,
        runtime=runtime,
        data=body,
        actor=identity,
        authorize=_retrain_policy(session, runtime),
    )
    return service.public(row)


@router.get(
    "/v1/data-subject-requests", response_model=list[DataSubjectRequestPublic], responses=NEXT_LINK
)
def list_requests(
    request: Request,
    response: Response,
    session: SessionDep,
    guard: Annotated[Guard, action("dsr.list")],
    type: Annotated[str | None, Query(pattern="^(access|erasure|objection)$")] = None,
    state: Annotated[
        str | None, Query(pattern="^(received|acknowledged|completed|refused)$")
    ] = None,
    after: AfterQuery = None,
    limit: LimitQuery = 100,
) -> list[DataSubjectRequestPublic]:
    """A page of the request log, newest first; the next page is in the Link header."""
    guard.check(PLATFORM)
    page = service.page_requests(session, type=type, state=state, after=after, limit=limit)
    link_next(request, response, page.next)
    return [service.public(r) for r in page.items]


def _request_resource(request_id: str) -> Resource:
    return Resource(type="DataSubjectRequest", id=request_id)


@router.get("/v1/data-subject-requests/{request_id}", response_model=DataSubjectRequestPublic)
def get_request(
    request_id: RequestIdP, session: SessionDep, guard: Annotated[Guard, action("dsr.read")]
) -> DataSubjectRequestPublic:
    guard.check(_request_resource(request_id))
    return service.public(service.get_request(session, request_id=request_id))


def _headers(fmt: str, name: str) -> dict[str, str]:
    disposition = "inline" if fmt in ("html", "json") else "attachment"
    return {
        "Content-Disposition": f'{disposition}; filename="{name}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    }


def _issue(
    runtime: Runtime, identity: Identity, report: Report, fmt: str, project: str | None
) -> Response:
    """The whole document, its SHA-256 recorded in the ledger and sent as a header."""
    content, digest = issue_whole(
        runtime.engine, report, fmt, actor=identity.principal_id, project=project
    )
    headers = _headers(fmt, filename(report, fmt))
    headers["X-Privet-Report-Digest"] = digest
    return Response(content, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get("/v1/data-subject-requests/{request_id}/report")
def request_report(
    request_id: RequestIdP,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("dsr.read")],
    format: FormatQ = "json",
) -> Response:
    """The answer to the request: for access, the subject's data (with their own id);
    for erasure or objection, what was done. Cites its ledger events with proofs."""
    guard.check(_request_resource(request_id))
    service.get_request(session, request_id=request_id)
    session.commit()  # the decision is durable; release the write lock before the long read
    integrate_now(runtime.engine)
    with read_session(runtime.engine) as reader:
        row = service.get_request(reader, request_id=request_id)
        report = build_request_report(reader, runtime, actor=identity.principal_id, request=row)
    return _issue(runtime, identity, report, format, None)


@router.get("/v1/projects/{project_id}/compliance-settings", response_model=ProjectCompliancePublic)
def get_settings(
    project_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("project.read")],
) -> ProjectCompliancePublic:
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(Resource(type="Project", id=project.id, project_id=project.id))
    return service.get_project_settings(session, project_id=project.id)


@router.put("/v1/projects/{project_id}/compliance-settings", response_model=ProjectCompliancePublic)
def put_settings(
    project_id: str,
    body: ProjectComplianceUpdate,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("project.update")],
) -> ProjectCompliancePublic:
    """Controller, DPO contact, categories of data subjects, recipients and transfers:
    what the record of processing activities (RoPA) reports for this project."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(Resource(type="Project", id=project.id, project_id=project.id))
    return service.put_project_settings(
        session, project_id=project.id, data=body, actor=identity.principal_id
    )


def authorize_report(
    session: Session,
    identity: Identity,
    guard: Guard,
    spec: ReportKind,
    *,
    project: str | None,
    model_version: str | None,
) -> str | None:
    """The project a report covers (a model version's own when one is named), after the
    guard's decision on it (the API's routes and the console's Reports page)."""
    kind = spec.name
    if "model_version" in spec.parameters and model_version:
        owner = model_version_project(session, model_version)
        if project is not None and project != owner:
            raise NotFoundError(f"model version {model_version!r} is not in project {project!r}")
        project = owner
    if project is not None:
        auth_service.get_project(session, project_id=project, viewer=identity)
    guard.check(Resource(type="Report", id=kind, project_id=project, attrs={"kind": kind}))
    return project


def _report_route(spec: ReportKind) -> Callable[..., Response]:
    kind = spec.name

    def handler(
        session: SessionDep,
        identity: IdentityDep,
        runtime: RuntimeDep,
        guard: Annotated[Guard, action(REPORT_ACTIONS[kind].value)],
        format: FormatQ = "json",
        project: Annotated[str | None, Query(max_length=40)] = None,
        model_version: Annotated[str | None, Query(max_length=40)] = None,
        dataset_version: Annotated[str | None, Query(max_length=40)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        principal: Annotated[str | None, Query(max_length=40)] = None,
        action_: Annotated[str | None, Query(alias="action", max_length=100)] = None,
        outcome: Annotated[str | None, Query(pattern="^(allow|deny)$")] = None,
        type: Annotated[str | None, Query(pattern="^(access|erasure|objection)$")] = None,
    ) -> Response:
        project = authorize_report(
            session, identity, guard, spec, project=project, model_version=model_version
        )
        session.commit()  # the decision is durable; release the write lock before the long read
        integrate_now(runtime.engine)
        params = {
            "project": project,
            "model_version": model_version,
            "dataset_version": dataset_version,
            "since": since,
            "until": until,
            "principal": principal,
            "action": action_,
            "outcome": outcome,
            "type": type,
        }
        if format == "pdf":
            with read_session(runtime.engine) as reader:
                report = spec.build(reader, runtime, actor=identity.principal_id, params=params)
                return _issue(runtime, identity, report, format, project)
        report, chunks = stream_report(
            runtime.engine,
            lambda reader: spec.build(reader, runtime, actor=identity.principal_id, params=params),
            format,
            actor=identity.principal_id,
            project=project,
        )
        return StreamingResponse(
            chunks,
            media_type=MEDIA_TYPES[format],
            headers=_headers(format, filename(report, format)),
        )

    handler.__name__ = f"report_{kind.replace('-', '_')}"
    handler.__doc__ = f"The `{kind}` report in JSON, CSV, HTML or PDF, with ledger evidence."
    return handler


REPORT_HANDLERS: dict[str, Callable[..., Response]] = {
    name: _report_route(spec) for name, spec in REGISTRY.items()
}
"""Each kind's handler (the console's Reports page downloads through the same one)."""

for _spec in REGISTRY.values():
    router.add_api_route(
        f"/v1/reports/{_spec.name}",
        REPORT_HANDLERS[_spec.name],
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}},
    )
