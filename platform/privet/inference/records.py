"""What one predict request leaves behind, built before anything is written: per item a
``predictions`` row, a ``prediction.made`` ledger event and the response.

Ids, keyed digests and the output only: the input text appears as its HMAC digest, a
subject id as its pseudonym.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from privet import ledger
from privet.inference.digests import Digester
from privet.inference.observer import PredictionBatch
from privet.inference.schemas import PredictionOut, PredictItem
from privet.inference.tables import PREDICTION_ID_PREFIX, Prediction
from privet.inference.versions import VersionInfo
from privet.kit.errors import NotFoundError
from privet.kit.ids import new_id

if TYPE_CHECKING:  # torch loads on the first prediction, not at import
    from privet.inference.classifier import Scores

PPM = 1_000_000


def to_ppm(p: float) -> int:
    """A probability as integer parts per million (events refuse floats)."""
    value: int = round(float(p) * PPM)
    return max(0, min(PPM, value))


def prediction_batch(
    *,
    info: VersionInfo,
    items: Sequence[PredictItem],
    scores: Sequence[Scores],
    digester: Digester,
    purpose: str,
    caller: str,
    now: datetime,
    precision: str,
) -> PredictionBatch:
    """The rows, events and responses of ``items`` classified as ``scores`` in
    ``precision`` (PRIVET_INFERENCE_PRECISION, which each event names)."""
    batch = PredictionBatch(
        info=info,
        items=items,
        scores=scores,
        rows=[],
        events=[],
        out=[],
        purpose=purpose,
        caller=caller,
    )
    for item, score in zip(items, scores, strict=True):
        pid = new_id(PREDICTION_ID_PREFIX)
        text_digest = digester.text(item.text)
        subject = digester.subject(item.subject_id)
        row = _row(info, pid, score, text_digest, subject, purpose, caller, now)
        batch.rows.append(row)
        batch.events.append(_event(info, row, precision))
        batch.out.append(_response(info, row, score))
    return batch


def _row(
    info: VersionInfo,
    pid: str,
    score: Scores,
    text_digest: str,
    subject: str | None,
    purpose: str,
    caller: str,
    now: datetime,
) -> dict[str, Any]:
    best = score.best
    return {
        "id": pid,
        "project_id": info.project_id,
        "model_id": info.model_id,
        "model_version_id": info.id,
        "version_number": info.number,
        "caller": caller,
        "purpose": purpose,
        "input_digest": text_digest,
        "subject_digest": subject,
        "label": info.label_names[best],
        "score_ppm": to_ppm(score.probabilities[best]),
        "human_reviewed": False,
        "created_at": now,
    }


def _event(info: VersionInfo, row: dict[str, Any], precision: str) -> ledger.EventSpec:
    digests = {"input": row["input_digest"]}
    if row["subject_digest"] is not None:
        digests["subject"] = row["subject_digest"]
    return ledger.EventSpec(
        type="prediction.made",
        actor=row["caller"],
        project=info.project_id,
        objects={"prediction": row["id"], "model_version": info.id, "model": info.model_id},
        digests=digests,
        details={
            "purpose": row["purpose"],
            "label": row["label"],
            "score_ppm": row["score_ppm"],
            "model_version": info.number,
            "human_reviewed": False,
            "precision": precision,
        },
    )


def _response(info: VersionInfo, row: dict[str, Any], score: Scores) -> PredictionOut:
    labels = info.label_names
    return PredictionOut(
        prediction_id=row["id"],
        label=row["label"],
        score=round(score.probabilities[score.best], 6),
        probabilities={
            name: round(p, 6) for name, p in zip(labels, score.probabilities, strict=True)
        },
        model_id=info.model_id,
        model_version_id=info.id,
        model_version=info.number,
        purpose=row["purpose"],
    )


def get_prediction(session: Session, *, project_id: str, prediction_id: str) -> Prediction:
    """The prediction, or NotFoundError when it is not in `project_id`."""
    row = session.get(Prediction, prediction_id)
    if row is None or row.project_id != project_id:
        raise NotFoundError(
            f"prediction {prediction_id!r} does not exist in project {project_id!r}"
        )
    return row
