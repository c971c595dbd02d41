"""The text of a review case: sealed when the decision rules refer a prediction or hold
it for review, readable by the person who may decide it, crypto-shredded after.

GDPR Art. 22 gives the data subject a human review, and a reviewer must read what the
model read. So, for the predictions the rules keep from being final (and only those),
the monitor seals the input text with a data key of the case's own (the mechanism of
review reasons: ``reasons.seal_text``) into ``prediction_cases`` beside the queue item.
The key is destroyed, and the text unrecoverable, when a review closes the item, when
``PRIVET_INFERENCE_CASE_TEXT_RETENTION_DAYS`` have passed, or when the subject is erased:
one ``prediction.case_shredded`` ledger event each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from privet import ledger
from privet.crypto import KeyProvider, ObjectRef, shred
from privet.inference.reasons import open_text, seal_text
from privet.inference.schemas import CaseTextPublic
from privet.inference.settings import get_inference_settings
from privet.inference.tables import Prediction, PredictionCase
from privet.kit.errors import NotFoundError, PrivetError
from privet.kit.ids import utcnow

CASE_KIND = "prediction_case"
SYSTEM_ACTOR = "system:inference"
REVIEWED, RETENTION, ERASURE = "reviewed", "retention", "erasure"
_WHY = {
    REVIEWED: "a review closed the case",
    RETENTION: "the case's retention ended",
    ERASURE: "its data subject was erased",
}


class CaseTextGoneError(PrivetError):
    """The case's text was crypto-shredded (or is past its retention): gone for good."""

    status = 410


def case_ref(project_id: str, prediction_id: str) -> ObjectRef:
    return ObjectRef(CASE_KIND, prediction_id, project_id)


def retention() -> timedelta:
    return timedelta(days=get_inference_settings().case_text_retention_days)


def seal_cases(
    session: Session,
    *,
    provider: KeyProvider,
    project_id: str,
    cases: Sequence[tuple[str, str]],
    created_at: datetime,
) -> None:
    """Seal each (prediction id, input text) with a new data key of its own."""
    for prediction_id, text in cases:
        ref = case_ref(project_id, prediction_id)
        session.add(
            PredictionCase(
                prediction_id=prediction_id,
                project_id=project_id,
                text_sealed=seal_text(session, provider=provider, ref=ref, text=text),
                created_at=created_at,
            )
        )
    session.flush()


def read_case(
    session: Session, *, provider: KeyProvider, prediction: Prediction, now: datetime | None = None
) -> CaseTextPublic:
    """The case's text; 404 for a prediction that was never a case, 410 once shredded or
    past its retention (the sweep then destroys the key)."""
    row = session.get(PredictionCase, prediction.id)
    if row is None or row.project_id != prediction.project_id:
        raise NotFoundError(
            f"prediction {prediction.id!r} was not referred or held for review, so the "
            "platform kept no text for it"
        )
    until = row.created_at + retention()
    if row.shredded_at is not None or row.text_sealed is None:
        why = _WHY.get(row.shred_reason or "", "it was shredded")
        raise CaseTextGoneError(
            f"the text of case {prediction.id!r} was crypto-shredded at "
            f"{row.shredded_at.isoformat() if row.shredded_at else 'an unknown time'} "
            f"because {why}: it cannot be recovered"
        )
    if until <= (now or utcnow()):
        raise CaseTextGoneError(
            f"the text of case {prediction.id!r} is past its retention (kept until "
            f"{until.isoformat()}, PRIVET_INFERENCE_CASE_TEXT_RETENTION_DAYS) and is shredded"
        )
    text = open_text(
        session,
        provider=provider,
        ref=case_ref(row.project_id, row.prediction_id),
        sealed=row.text_sealed,
    )
    if text is None:
        raise CaseTextGoneError(f"the data key of case {prediction.id!r} is destroyed")
    return CaseTextPublic(
        prediction_id=row.prediction_id, text=text, sealed_at=row.created_at, retained_until=until
    )


def shred_case(session: Session, *, row: PredictionCase, reason: str, actor: str) -> bool:
    """Destroy the case's data key and drop its ciphertext; one ledger event. False when
    it was already shredded."""
    if row.shredded_at is not None:
        return False
    shred(session=session, ref=case_ref(row.project_id, row.prediction_id))
    row.text_sealed = None
    row.shredded_at = utcnow()
    row.shred_reason = reason
    session.add(row)
    ledger.emit(
        session,
        type="prediction.case_shredded",
        actor=actor,
        project=row.project_id,
        objects={"prediction": row.prediction_id},
        details={"reason": reason},
    )
    return True


def shred_reviewed_case(session: Session, *, prediction: Prediction, actor: str) -> bool:
    """A review closed the item: its text is no longer needed."""
    row = session.get(PredictionCase, prediction.id)
    if row is None:
        return False
    shredded = shred_case(session, row=row, reason=REVIEWED, actor=actor)
    session.flush()
    return shredded


def shred_subject_cases(session: Session, *, subject_digest: str, actor: str) -> int:
    """Shred the case texts of every prediction about the subject (by pseudonym)."""
    rows = (
        session.execute(
            select(PredictionCase)
            .join(Prediction, col(Prediction.id) == col(PredictionCase.prediction_id))
            .where(
                col(Prediction.subject_digest) == subject_digest,
                col(PredictionCase.shredded_at).is_(None),
            )
        )
        .scalars()
        .all()
    )
    n = sum(shred_case(session, row=row, reason=ERASURE, actor=actor) for row in rows)
    session.flush()
    return n


def sweep_case_retention(
    session: Session,
    *,
    now: datetime | None = None,
    limit: int = 500,
    actor: str = SYSTEM_ACTOR,
) -> int:
    """Shred up to ``limit`` case texts past their retention, oldest first; how many."""
    cutoff = (now or utcnow()) - retention()
    rows = (
        session.execute(
            select(PredictionCase)
            .where(
                col(PredictionCase.shredded_at).is_(None),
                col(PredictionCase.created_at) <= cutoff,
            )
            .order_by(col(PredictionCase.created_at))
            .limit(limit)
        )
        .scalars()
        .all()
    )
    n = sum(shred_case(session, row=row, reason=RETENTION, actor=actor) for row in rows)
    session.flush()
    return n
