"""Reasons of human reviews and contests, sealed at rest and shredded with the subject.

A reason is prose about a decision on a person ("the customer disputes...", "income was
verified by phone"), so it is stored only sealed, with a data key of its own review
(``prediction_review``), and the ledger holds only its keyed digest. Erasing a subject
shreds the keys of every review of the predictions made about them: the reason becomes
unreadable in the database and in every backup, while the review itself (kind, decision,
label, who, when) stays as the record of the decision.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from privet.crypto import (
    DataKeyDestroyedError,
    DataKeyNotFoundError,
    KeyProvider,
    ObjectRef,
    create_data_key,
    seal,
    shred,
    unseal,
    unwrap_data_key,
)
from privet.inference.tables import Prediction, PredictionReview
from privet.kit.ids import utcnow

REASON_KIND = "prediction_review"


def reason_ref(review: PredictionReview) -> ObjectRef:
    return ObjectRef(REASON_KIND, review.id, review.project_id)


def seal_reason(
    session: Session, *, provider: KeyProvider, review: PredictionReview, reason: str
) -> None:
    """Seal ``reason`` onto ``review`` with a new data key (nothing for an empty reason)."""
    if not reason:
        return
    review.reason_sealed = seal_text(
        session, provider=provider, ref=reason_ref(review), text=reason
    )


def seal_text(session: Session, *, provider: KeyProvider, ref: ObjectRef, text: str) -> bytes:
    """``text`` sealed with a new data key of ``ref``'s own (shredding that key alone makes
    it unreadable): the one way prose about a person is kept (reasons, case texts)."""
    handle = create_data_key(session=session, provider=provider, ref=ref)
    return seal(text.encode(), data_key=handle.key, key_ref=handle.key_id, ref=ref)


def open_text(
    session: Session, *, provider: KeyProvider, ref: ObjectRef, sealed: bytes
) -> str | None:
    """The text ``seal_text`` sealed; None once its data key is destroyed (or missing)."""
    try:
        handle = unwrap_data_key(session=session, provider=provider, ref=ref)
    except (DataKeyDestroyedError, DataKeyNotFoundError):
        return None
    return unseal(sealed, data_key=handle.key, key_ref=handle.key_id, ref=ref).decode()


def read_reason(session: Session, *, provider: KeyProvider, review: PredictionReview) -> str | None:
    """The review's reason ("" when none was given; None once shredded)."""
    if review.reason_shredded_at is not None:
        return None
    if review.reason_sealed is None:
        return ""
    return open_text(
        session, provider=provider, ref=reason_ref(review), sealed=review.reason_sealed
    )


def shred_subject_reasons(session: Session, *, subject_digest: str) -> int:
    """Shred the reasons of every review of a prediction about the subject (by pseudonym);
    returns how many were shredded. Idempotent."""
    reviews = (
        session.execute(
            select(PredictionReview)
            .join(Prediction, col(Prediction.id) == col(PredictionReview.prediction_id))
            .where(
                col(Prediction.subject_digest) == subject_digest,
                col(PredictionReview.reason_sealed).is_not(None),
            )
        )
        .scalars()
        .all()
    )
    for review in reviews:
        shred(session=session, ref=reason_ref(review))
        review.reason_sealed = None
        review.reason_shredded_at = utcnow()
        session.add(review)
    session.flush()
    return len(reviews)
