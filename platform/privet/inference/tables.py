"""Tables of audited inference (request and response schemas: ``privet.inference.schemas``).

A ``Prediction`` row mirrors its ledger event so reviews and explanations can find it
without parsing the log: ids, the keyed digest of the input (never the input), the
output and the facts of the call. A ``PredictionReview`` is a human review or a contest;
a ``PredictionCase`` the sealed text of a referred or held prediction (its review case).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, LargeBinary, String
from sqlmodel import Field, SQLModel

from privet.kit.types import UTCDateTime

PREDICTION_ID_PREFIX = "prd"
REVIEW_ID_PREFIX = "prv"


class Prediction(SQLModel, table=True):
    __tablename__ = "predictions"

    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(max_length=40, index=True)
    model_id: str = Field(max_length=40)
    model_version_id: str = Field(max_length=40, index=True)
    version_number: int
    caller: str = Field(max_length=60, description="Principal id of the caller.")
    purpose: str = Field(max_length=64)
    input_digest: str = Field(max_length=80, description="hmac-sha256 of the input text.")
    subject_digest: str | None = Field(
        default=None, sa_column=Column(String(80), index=True, nullable=True)
    )
    label: str = Field(max_length=100)
    score_ppm: int = Field(description="Probability of the label, in parts per million.")
    human_reviewed: bool = False
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ReviewKind(StrEnum):
    review = "review"
    contest = "contest"


class ReviewDecision(StrEnum):
    confirmed = "confirmed"
    overturned = "overturned"
    pending = "pending"


class PredictionReview(SQLModel, table=True):
    __tablename__ = "prediction_reviews"

    id: str = Field(primary_key=True, max_length=40)
    prediction_id: str = Field(max_length=40, foreign_key="predictions.id", index=True)
    project_id: str = Field(max_length=40, index=True)
    kind: str = Field(max_length=20)
    decision: str = Field(max_length=20)
    label: str | None = Field(default=None, max_length=100)
    #: the reason, sealed with the review's own data key (privet.inference.reasons)
    reason_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    reason_shredded_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    reviewer: str = Field(max_length=60)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PredictionCase(SQLModel, table=True):
    """The input text of a prediction the decision rules referred or held for review,
    beside its queue item (``prediction_decisions``, same ``prediction_id``), sealed with
    a data key of its own (``privet.inference.cases``) so a reviewer can read the case.
    Ordinary predictions have no row: the platform keeps no other input text."""

    __tablename__ = "prediction_cases"

    prediction_id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(max_length=40, index=True)
    #: the text, sealed with the case's own data key; None once shredded
    text_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    shredded_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    #: why the key was destroyed: reviewed | retention | erasure
    shred_reason: str | None = Field(default=None, max_length=20)
