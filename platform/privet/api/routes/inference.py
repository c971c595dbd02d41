"""Audited inference: predict with an approved model version, review and explain.

Routes and their actions:
- ``POST /v1/projects/{p}/models/{m}/versions/{v}:predict``  model_version.predict
- ``POST /v1/projects/{p}/models/{m}:predict`` (the serving version) model_version.predict
- ``POST /v1/projects/{p}/predictions/{id}:review``           prediction.review
- ``GET  /v1/projects/{p}/predictions/{id}/reviews``           review_queue.read
- ``GET  /v1/projects/{p}/predictions/{id}/case``              prediction.review
- ``POST /v1/projects/{p}/predictions/{id}:explain``          prediction.explain

The explanation is a POST, not ``GET .../explanation``: the caller must resubmit the
input, and a text in a GET query string would land in access logs, proxies and browser
history, while GET bodies are dropped by many clients and proxies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from privet.api.deps import (
    Guard,
    IdentityDep,
    Resource,
    RuntimeDep,
    SessionDep,
    action,
    decides_before_writing,
    row_resource,
)
from privet.api.problems import error_problem, problem
from privet.api.routing import OneHopRoute
from privet.auth import service as auth_service
from privet.auth.identity import Identity
from privet.compliance import service as compliance_service
from privet.db import read_session
from privet.inference import cases
from privet.inference.schemas import (
    CaseTextPublic,
    ExplainRequest,
    ExplanationOut,
    PredictRequest,
    PredictResponse,
    ReviewCreate,
    ReviewPublic,
)
from privet.inference.service import InferenceService
from privet.inference.tables import Prediction
from privet.inference.versions import (
    SERVING,
    VersionChangedError,
    VersionInfo,
    VersionNotServingError,
)
from privet.kit.errors import ForbiddenError
from privet.policy.request import predict_context

router = APIRouter(route_class=OneHopRoute, prefix="/v1/projects", tags=["inference"])

_service_lock = threading.Lock()


def get_inference(request: Request, runtime: RuntimeDep) -> InferenceService:
    """The process's inference service (model cache, batchers), created on first use."""
    service: InferenceService | None = getattr(request.app.state, "inference", None)
    if service is None:
        with _service_lock:
            service = getattr(request.app.state, "inference", None)
            if service is None:
                service = InferenceService.from_runtime(
                    runtime, registry=getattr(request.app.state, "metrics_registry", None)
                )
                request.app.state.inference = service
    return service


InferenceDep = Annotated[InferenceService, Depends(get_inference)]


def version_resource(info: VersionInfo) -> Resource:
    return row_resource(
        "ModelVersion",
        info,
        {
            "project": info.project_id,
            "state": info.state,
            "submitted_by": info.submitted_by,
            "purposes": set(info.purposes),
        },
    )


def prediction_resource(prediction: Prediction, attrs: dict[str, Any] | None = None) -> Resource:
    return row_resource("Prediction", prediction, attrs)


@dataclass(frozen=True)
class PredictCall:
    """What both predict routes take besides the path: one dependency, so the two route
    signatures (which differ only in how the version is named) do not repeat it."""

    request: Request
    session: Session
    identity: Identity
    guard: Guard
    service: InferenceService


def _predict_call(
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("model_version.predict")],
    service: InferenceDep,
) -> PredictCall:
    return PredictCall(
        request=request, session=session, identity=identity, guard=guard, service=service
    )


PredictCallDep = Annotated[PredictCall, Depends(_predict_call)]


def _predict(
    call: PredictCall, *, project_id: str, model: str, version: str, body: PredictRequest
) -> PredictResponse | JSONResponse:
    """Authorize in a read-only snapshot, classify with no transaction open, then write the
    predictions and their events (and the deferred decision) in the request's transaction:
    on SQLite no request holds the write lock during a forward pass, so concurrent
    requests share the micro-batcher's passes."""
    service, purpose = call.service, body.effective_purpose
    with read_session(service.engine) as reader:
        auth_service.get_project(reader, project_id=project_id, viewer=call.identity)
        info = service.version(reader, project_id=project_id, model=model, version=version)
        try:
            call.guard.check(version_resource(info), predict_context(purpose=purpose))
        except ForbiddenError:
            if info.serving:
                raise  # role or purpose: the deny decision is the logged refusal
            denied = True  # not approved (candidate, retired, suspended): 409 below
        else:
            denied = False
        objected = _objected(reader, service, body, purpose) if not denied else {}
    if denied:
        return _not_serving(call, info, body, purpose)
    if objected:
        return _objection(call, info, body, purpose, objected)
    scores = service.classify(info=info, items=body.items)  # no transaction open
    try:
        predictions = service.record(
            call.session,
            info=info,
            items=body.items,
            scores=scores,
            purpose=purpose,
            caller=call.identity.principal_id,
        )
    except VersionChangedError as changed:  # retired or suspended while classifying
        return _not_serving(call, changed.info, body, purpose, error=changed)
    return PredictResponse(
        model=info.model_name,
        model_id=info.model_id,
        model_version_id=info.id,
        model_version=info.number,
        predictions=predictions,
    )


def _not_serving(
    call: PredictCall,
    info: VersionInfo,
    body: PredictRequest,
    purpose: str,
    *,
    error: VersionNotServingError | None = None,
) -> JSONResponse:
    """Record the refusal of a version that does not serve and answer 409. Returned, not
    raised, so the request's transaction commits the refusal with the decision."""
    call.service.record_refusal(
        call.session,
        info=info,
        caller=call.identity.principal_id,
        purpose=purpose,
        items=len(body.items),
        after_decision=error is not None,
    )
    if error is None:
        error = VersionNotServingError(
            f"model version {info.number} of {info.model_name!r} is {info.state}: "
            "only approved versions serve",
            model_version=info.id,
            state=info.state,
        )
    return error_problem(call.request, error)


def _objected(
    reader: Session, service: InferenceService, body: PredictRequest, purpose: str
) -> dict[str, int]:
    """GDPR Art. 21: the subjects named in the request who objected to processing for
    this purpose (or for all), by pseudonym, with how many items are theirs. Requests
    without subject ids cost nothing."""
    digests = service.subject_digests(body.items)
    named = {d for d in digests if d is not None}
    if not named:
        return {}
    objected = compliance_service.objecting_subjects(reader, subject_digests=named, purpose=purpose)
    return {d: sum(1 for x in digests if x == d) for d in objected}


def _objection(
    call: PredictCall,
    info: VersionInfo,
    body: PredictRequest,
    purpose: str,
    objected: dict[str, int],
) -> JSONResponse:
    """A request naming a subject who objected is refused before any text is classified:
    409 ``subject-objected`` naming the items (by position), one ``prediction.refused``
    event per objecting subject (by pseudonym)."""
    digests = call.service.subject_digests(body.items)
    positions = [i for i, d in enumerate(digests) if d in objected]
    # Returned, not raised, so the refusal events commit with the decision.
    call.service.record_objection_refusal(
        call.session,
        info=info,
        caller=call.identity.principal_id,
        purpose=purpose,
        items=len(body.items),
        objected=objected,
    )
    which = ", ".join(f"items[{i}]" for i in positions[:20])
    return problem(
        call.request,
        status=409,
        slug="subject-objected",
        title="Data subject objected",
        detail=f"the data subject of {which} objected to processing for purpose "
        f"{purpose!r} (GDPR Art. 21): no prediction was made; send the other items "
        "without them",
        items=positions,
        purpose=purpose,
    )


@router.post(
    "/{project_id}/models/{model}/versions/{version}:predict",
    response_model=PredictResponse,
    summary="Classify texts with one model version (approved versions only)",
)
@decides_before_writing
def predict_version(
    project_id: str, model: str, version: str, body: PredictRequest, call: PredictCallDep
) -> PredictResponse | JSONResponse:
    return _predict(call, project_id=project_id, model=model, version=version, body=body)


@router.post(
    "/{project_id}/models/{model}:predict",
    response_model=PredictResponse,
    summary="Classify texts with the model's serving version (its newest approved one)",
)
@decides_before_writing
def predict_serving(
    project_id: str, model: str, body: PredictRequest, call: PredictCallDep
) -> PredictResponse | JSONResponse:
    return _predict(call, project_id=project_id, model=model, version=SERVING, body=body)


def _reviewable(
    session: Session,
    identity: Identity,
    guard: Guard,
    service: InferenceService,
    project_id: str,
    prediction_id: str,
    *,
    kind: str,
) -> Prediction:
    """The prediction, once ``prediction.review`` allows this identity a review of
    ``kind`` (the four-eyes rules read the prediction's review attributes): recording a
    review and reading the case text are authorized alike."""
    auth_service.get_project(session, project_id=project_id, viewer=identity)
    prediction = service.get_prediction(session, project_id=project_id, prediction_id=prediction_id)
    attrs = service.review_attributes(session, prediction=prediction)
    guard.check(prediction_resource(prediction, attrs), {"kind": kind})
    return prediction


@router.post(
    "/{project_id}/predictions/{prediction_id}:review",
    response_model=ReviewPublic,
    status_code=201,
    summary="Record a human review (confirmed/overturned) or a contest of a prediction",
)
def review_prediction(
    project_id: str,
    prediction_id: str,
    body: ReviewCreate,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("prediction.review")],
    service: InferenceDep,
) -> ReviewPublic:
    """A review decides (a named person, not the human behind the application that made
    the prediction, nor one who already decided it: policies/human_review.cedar); a
    contest only records that the decision is disputed, for a later review to decide."""
    prediction = _reviewable(
        session, identity, guard, service, project_id, prediction_id, kind=body.kind.value
    )
    return service.review(session, prediction=prediction, body=body, reviewer=identity.principal_id)


@router.get(
    "/{project_id}/predictions/{prediction_id}/reviews",
    response_model=list[ReviewPublic],
    summary="The reviews and contests of a prediction, with their reasons (for reviewers)",
)
def list_reviews(
    project_id: str,
    prediction_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("review_queue.read")],
    service: InferenceDep,
) -> list[ReviewPublic]:
    """Reasons are sealed at rest and unsealed here; a reason whose subject was erased is
    null with ``reason_shredded`` true. Readable by those who read the project's review
    queue (approvers, auditors, admins): reading is not deciding, so the four-eyes rules of
    ``prediction.review`` do not apply."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(Resource(type="Project", id=project.id, project_id=project.id))
    prediction = service.get_prediction(session, project_id=project_id, prediction_id=prediction_id)
    return service.reviews(session, prediction=prediction)


@router.get(
    "/{project_id}/predictions/{prediction_id}/case",
    response_model=CaseTextPublic,
    summary="The input text of a review case, for the person who may decide its review",
)
def get_case_text(
    project_id: str,
    prediction_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("prediction.review")],
    service: InferenceDep,
) -> CaseTextPublic:
    """Only a prediction the decision rules referred or held has a text (404 otherwise),
    and only until a review closes it, its retention ends or its subject is erased (410
    after: crypto-shredded). Authorized as deciding its review (``prediction.review``,
    the four-eyes rules included): whoever may not decide the case does not read it."""
    prediction = _reviewable(
        session, identity, guard, service, project_id, prediction_id, kind="review"
    )
    return cases.read_case(session, provider=service.key_provider, prediction=prediction)


@router.post(
    "/{project_id}/predictions/{prediction_id}:explain",
    response_model=ExplanationOut,
    summary="Token attributions for a prediction; resubmit its input (checked by digest)",
)
@decides_before_writing
def explain_prediction(
    request: Request,
    project_id: str,
    prediction_id: str,
    body: ExplainRequest,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("prediction.explain")],
    service: InferenceDep,
) -> ExplanationOut | JSONResponse:
    """Authorized in a read-only snapshot; the occlusion passes run with no transaction
    open; the event (and the deferred decision) commit in the request's transaction."""
    with read_session(service.engine) as reader:
        auth_service.get_project(reader, project_id=project_id, viewer=identity)
        prediction = service.get_prediction(
            reader, project_id=project_id, prediction_id=prediction_id
        )
        reader.expunge(prediction)  # kept loaded past the snapshot's end (no refresh)
        guard.check(prediction_resource(prediction))
        matches = service.input_matches(prediction, body.text)
        info = service.explained_version(reader, prediction=prediction) if matches else None
    if info is None:
        # Returned, not raised, so the refusal event commits with the decision.
        service.record_explain_refusal(
            session, prediction=prediction, caller=identity.principal_id, text=body.text
        )
        return problem(
            request,
            status=422,
            slug="input-digest-mismatch",
            title="Input does not match the prediction",
            detail="the submitted text is not the input of this prediction (its keyed "
            "digest differs); resubmit the exact text that was classified",
        )
    explanation = service.explain(info=info, prediction=prediction, text=body.text)
    service.record_explanation(
        session, prediction=prediction, explanation=explanation, caller=identity.principal_id
    )
    return explanation
