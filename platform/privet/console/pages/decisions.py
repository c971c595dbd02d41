"""Decisions: the review queue of each project the viewer reviews (predictions the decision
rules referred or kept pending review), the rule that kept each one from being final and
why, the reviews and contests already recorded; confirm or overturn with a reason, or
record a contest. Reading is `review_queue.read` per project; deciding calls the API's
`prediction.review` handler with the console guard, so the human-review rules
(policies/human_review.cedar) refuse here exactly as on the API.

A referred or held prediction's input text is kept sealed beside its queue item
(`privet.inference.cases`): it is shown only to whoever may decide the review (the
`prediction.review` decision, ledgered), and shredded once a review closes the item, its
retention ends or its subject is erased (docs/CONSOLE.md, "Decisions: the case's text")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlmodel import Session

from privet.api.deps import Guard, RuntimeDep, SessionDep
from privet.api.paging import AfterQuery
from privet.api.routes import inference as api_inference
from privet.console.deps import ViewerDep, also, csrf_checked, page, permits, render
from privet.console.listing import ListingDep
from privet.inference import cases
from privet.inference.cases import CaseTextGoneError
from privet.inference.schemas import ReviewCreate
from privet.inference.service import InferenceService
from privet.inference.tables import Prediction, PredictionCase, ReviewDecision, ReviewKind
from privet.kit.errors import InvalidInputError
from privet.models.tables import ModelVersion
from privet.monitoring import service as monitoring

router = APIRouter(prefix="/decisions", dependencies=[Depends(csrf_checked)])

PAGE = 20


@router.get("", response_class=HTMLResponse)
def queue(
    view: ListingDep,
    runtime: RuntimeDep,
    status: Annotated[Literal["open", "closed"], Query()] = "open",
    project: Annotated[str | None, Query(max_length=40)] = None,
    after: AfterQuery = None,
) -> HTMLResponse:
    """Each project's queue (open: waiting for a review; closed: decided, still
    contestable), oldest first, a keyset page at a time (``project`` and ``after``: one
    project's next page), with the rules' reasons and the recorded reviews."""
    session, guard = view.session, view.guard
    service = api_inference.get_inference(view.request, runtime)
    reasons = {p.id: p.reason for p in runtime.authorizer.engine.info().policies}
    labels: dict[str, list[str]] = {}
    projects: list[dict[str, Any]] = []
    for shown, start in view.project_pages("review_queue.read"):
        listed = monitoring.review_queue(
            session, project_id=shown.id, status=status, after=start, limit=PAGE
        )
        items = []
        contest: bool | None = None
        for item in listed.items:
            if item.model_version_id not in labels:
                version = session.get(ModelVersion, item.model_version_id)
                labels[item.model_version_id] = list(version.label_names) if version else []
            prediction = service.get_prediction(
                session, project_id=shown.id, prediction_id=item.prediction_id
            )
            resource = api_inference.prediction_resource(
                prediction, service.review_attributes(session, prediction=prediction)
            )
            # deciding reads the row (four-eyes): per item; contesting does not: once
            may_review = permits(also(guard, "prediction.review"), resource, {"kind": "review"})
            if contest is None:
                contest = permits(also(guard, "prediction.review"), resource, {"kind": "contest"})
            items.append(
                {
                    "item": item,
                    "why": [(r, reasons.get(r) or "") for r in item.rules],
                    "labels": labels[item.model_version_id],
                    "reviews": service.reviews(session, prediction=prediction),
                    "case": _case(session, service, prediction, may_review=may_review),
                    "may_review": may_review,
                    "may_contest": contest,
                }
            )
        more = view.next_link(listed.next, project=shown.id)
        projects.append(
            {"project": shown, "entries": items, "open": listed.open, "next_link": more}
        )
    return render(
        view.request,
        "decisions.html",
        {"title": "Decisions", "projects": projects, "status": status},
    )


def _case(
    session: Session, service: InferenceService, prediction: Prediction, *, may_review: bool
) -> dict[str, str]:
    """The case's text for whoever may decide its review (``may_review``: the item's
    `prediction.review` decision, ledgered like every view), or why it is not shown."""
    row = session.get(PredictionCase, prediction.id)
    if row is None:
        return {"note": "No text: this case was queued before case texts were kept."}
    if row.shredded_at is not None:
        return {"note": f"The text was crypto-shredded ({row.shred_reason})."}
    if not may_review:
        return {"note": "Only a person who may decide this review reads its text."}
    try:
        case = cases.read_case(session, provider=service.key_provider, prediction=prediction)
    except CaseTextGoneError as gone:
        return {"note": gone.detail}
    return {"text": case.text, "until": case.retained_until.strftime("%Y-%m-%d %H:%M UTC")}


@router.post("/{project_id}/{prediction_id}/review")
def review(
    request: Request,
    project_id: str,
    prediction_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("prediction.review")],
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
    kind: Annotated[ReviewKind, Form()] = ReviewKind.review,
    decision: Annotated[ReviewDecision | None, Form()] = None,
    label: Annotated[str, Form(max_length=100)] = "",
    back: Annotated[Literal["open", "closed"], Form()] = "open",
) -> RedirectResponse:
    """Confirm, overturn (optionally to another label) or contest, always with a reason:
    the API's handler, the same Cedar decision and `prediction.reviewed` /
    `prediction.contested` ledger event."""
    try:
        body = ReviewCreate(
            kind=kind,
            decision=None if kind == ReviewKind.contest else decision,
            label=label or None,
            reason=reason.strip(),
        )
    except ValidationError as error:
        why = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in error.errors())
        raise InvalidInputError(f"the review was not recorded: {why}") from None
    if not body.reason:
        raise InvalidInputError("the review was not recorded: a reason is required", field="reason")
    api_inference.review_prediction(
        project_id=project_id,
        prediction_id=prediction_id,
        body=body,
        session=session,
        identity=viewer,
        guard=guard,
        service=api_inference.get_inference(request, runtime),
    )
    shown = "closed" if kind == ReviewKind.review else back  # a review closes the item
    return RedirectResponse(f"/decisions?status={shown}", status_code=303)
