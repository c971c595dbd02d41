"""Human reviews and contests of a prediction (GDPR Art. 22): record one, list them, and
the attributes the ``prediction.review`` policy decides on.

A review's reason is sealed (``reasons``): the row holds ciphertext, the ledger event
its keyed digest. A review (not a contest) closes the case: its sealed text is shredded
(``cases``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from privet import ledger
from privet.auth import service as auth_service
from privet.crypto import KeyProvider
from privet.inference import cases, reasons
from privet.inference.digests import Digester
from privet.inference.schemas import ReviewCreate, ReviewPublic
from privet.inference.tables import (
    REVIEW_ID_PREFIX,
    Prediction,
    PredictionReview,
    ReviewDecision,
    ReviewKind,
)
from privet.kit.errors import InvalidInputError, NotFoundError
from privet.kit.ids import new_id, utcnow
from privet.models.tables import ModelVersion


def version_row(session: Session, prediction: Prediction) -> ModelVersion:
    """The model version that made ``prediction``."""
    row = session.get(ModelVersion, prediction.model_version_id)
    if row is None:  # pragma: no cover - versions are never deleted
        raise NotFoundError(f"model version {prediction.model_version_id!r} is gone")
    return row


def record_review(
    session: Session,
    *,
    provider: KeyProvider,
    digester: Digester,
    prediction: Prediction,
    body: ReviewCreate,
    reviewer: str,
) -> ReviewPublic:
    """Record a human review (confirmed/overturned) or a contest of a prediction."""
    version = version_row(session, prediction)
    if body.label is not None and body.label not in version.label_names:
        raise InvalidInputError(
            f"label {body.label!r} is not one of the model's labels {version.label_names}"
        )
    decision = body.decision or ReviewDecision.pending
    review = PredictionReview(
        id=new_id(REVIEW_ID_PREFIX),
        prediction_id=prediction.id,
        project_id=prediction.project_id,
        kind=body.kind.value,
        decision=decision.value,
        label=body.label,
        reviewer=reviewer,
        created_at=utcnow(),
    )
    reasons.seal_reason(session, provider=provider, review=review, reason=body.reason)
    session.add(review)
    reviewed = prediction.human_reviewed or body.kind == ReviewKind.review
    if reviewed and not prediction.human_reviewed:
        session.execute(
            update(Prediction.__table__)  # type: ignore[attr-defined]
            .where(Prediction.__table__.c.id == prediction.id)  # type: ignore[attr-defined]
            .values(human_reviewed=True)
        )
    _review_event(session, digester, prediction, body, review, reviewed)
    if body.kind == ReviewKind.review:  # the review closes the case: its text goes
        cases.shred_reviewed_case(session, prediction=prediction, actor=reviewer)
    session.flush()
    return ReviewPublic(
        id=review.id,
        prediction_id=prediction.id,
        kind=review.kind,
        decision=review.decision,
        label=review.label,
        reason=body.reason,
        reviewer=reviewer,
        created_at=review.created_at,
        human_reviewed=reviewed,
    )


def _review_event(
    session: Session,
    digester: Digester,
    prediction: Prediction,
    body: ReviewCreate,
    review: PredictionReview,
    reviewed: bool,
) -> None:
    """``prediction.reviewed`` or ``prediction.contested``: the reason only as a digest."""
    digests = {"reason": digester.text(body.reason)} if body.reason else None
    details: dict[str, Any] = {
        "kind": body.kind.value,
        "decision": review.decision,
        "original_label": prediction.label,
        "human_reviewed": reviewed,
    }
    if body.label is not None:
        details["label"] = body.label
    ledger.emit(
        session,
        type="prediction.contested" if body.kind == ReviewKind.contest else "prediction.reviewed",
        actor=review.reviewer,
        project=prediction.project_id,
        objects={
            "prediction": prediction.id,
            "model_version": prediction.model_version_id,
            "review": review.id,
        },
        digests=digests,
        details=details,
    )


def review_attributes(session: Session, *, prediction: Prediction) -> dict[str, Any]:
    """The Prediction's attributes for ``prediction.review``: the accountable human of
    the application that made it, and the people who already decided a review of it
    (policies/human_review.cedar compares the reviewer's accountable human with both)."""
    attrs: dict[str, Any] = {"project": prediction.project_id}
    caller = auth_service.accountable_human(session, principal_id=prediction.caller)
    if caller is not None:
        attrs["caller_accountable"] = caller
    decided: set[str] = set()
    for review in review_rows(session, prediction=prediction):
        if review.kind != ReviewKind.review.value:
            continue
        decided.add(review.reviewer)
        human = auth_service.accountable_human(session, principal_id=review.reviewer)
        if human is not None:
            decided.add(human)
    attrs["decided_by"] = decided
    return attrs


def review_rows(session: Session, *, prediction: Prediction) -> list[PredictionReview]:
    """The prediction's review rows, oldest first (reasons still sealed)."""
    return list(
        session.execute(
            select(PredictionReview)
            .where(PredictionReview.prediction_id == prediction.id)  # type: ignore[arg-type]
            .order_by(PredictionReview.created_at, PredictionReview.id)  # type: ignore[arg-type]
        ).scalars()
    )


def list_reviews(
    session: Session, *, provider: KeyProvider, prediction: Prediction
) -> list[ReviewPublic]:
    """The prediction's reviews and contests, oldest first, reasons unsealed."""
    out: list[ReviewPublic] = []
    reviewed = False
    for row in review_rows(session, prediction=prediction):
        reviewed = reviewed or row.kind == ReviewKind.review.value
        out.append(
            ReviewPublic(
                id=row.id,
                prediction_id=row.prediction_id,
                kind=row.kind,
                decision=row.decision,
                label=row.label,
                reason=reasons.read_reason(session, provider=provider, review=row),
                reason_shredded=row.reason_shredded_at is not None,
                reviewer=row.reviewer,
                created_at=row.created_at,
                human_reviewed=reviewed,
            )
        )
    return out
