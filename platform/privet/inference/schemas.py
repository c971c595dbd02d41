"""Request and response schemas of audited inference (its tables: ``privet.inference.tables``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, model_validator
from pydantic import Field as PField

from privet.inference.tables import ReviewDecision, ReviewKind

_PURPOSE = r"^[a-z][a-z0-9_]{0,63}$"


class PredictItem(BaseModel):
    text: str = PField(min_length=1, description="The text to classify (never stored).")
    purpose: str | None = PField(
        default=None,
        pattern=_PURPOSE,
        description="Why this prediction is made; must be among the version's purposes.",
    )
    subject_id: str | None = PField(
        default=None,
        min_length=1,
        max_length=200,
        description="The data subject the text is about; logged only as a keyed pseudonym.",
    )


class PredictRequest(BaseModel):
    items: list[PredictItem] = PField(min_length=1)
    purpose: str | None = PField(
        default=None, pattern=_PURPOSE, description="Default purpose for items without one."
    )

    @model_validator(mode="after")
    def _one_purpose(self) -> PredictRequest:
        purposes = {item.purpose or self.purpose for item in self.items}
        if None in purposes:
            raise ValueError("every item needs a purpose (per item or as the request's default)")
        if len(purposes) > 1:
            raise ValueError(
                "one request serves one purpose (the policy decides per purpose): "
                f"split the batch by purpose (got {sorted(p or '' for p in purposes)})"
            )
        return self

    @property
    def effective_purpose(self) -> str:
        return self.items[0].purpose or self.purpose or ""


class PredictionOut(BaseModel):
    prediction_id: str
    label: str
    score: float = PField(description="Probability of the label.")
    probabilities: dict[str, float]
    model_id: str
    model_version_id: str
    model_version: int
    purpose: str
    human_reviewed: bool = False
    decision: str = PField(
        default="final",
        description="final, or pending_review / refer when a decision rule keeps the "
        "prediction from being final (it waits in the review queue).",
    )
    decision_rules: list[str] = PField(
        default_factory=list, description="Ids of the decision rules that shaped it."
    )


class PredictResponse(BaseModel):
    model: str
    model_id: str
    model_version_id: str
    model_version: int
    predictions: list[PredictionOut]


class ReviewCreate(BaseModel):
    kind: ReviewKind = ReviewKind.review
    decision: ReviewDecision | None = PField(
        default=None,
        description="For a review: confirmed or overturned (default confirmed). A contest "
        "is recorded as pending until reviewed.",
    )
    label: str | None = PField(
        default=None, max_length=100, description="The label a reviewer overturned to."
    )
    reason: str = PField(default="", max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> ReviewCreate:
        if self.kind == ReviewKind.contest:
            if self.decision not in (None, ReviewDecision.pending):
                raise ValueError("a contest has no decision: a later review decides it")
            self.decision = ReviewDecision.pending
        else:
            if self.decision in (None,):
                self.decision = ReviewDecision.confirmed
            if self.decision == ReviewDecision.pending:
                raise ValueError("a review decides: confirmed or overturned")
        if self.label is not None and self.decision != ReviewDecision.overturned:
            raise ValueError("a corrected label is given only when overturning")
        return self


class ReviewPublic(BaseModel):
    id: str
    prediction_id: str
    kind: str
    decision: str
    label: str | None
    reason: str | None = PField(
        default=None,
        description="The reviewer's reason (sealed at rest); null once the subject of the "
        "prediction was erased.",
    )
    reason_shredded: bool = PField(
        default=False, description="The reason was crypto-shredded by an erasure."
    )
    reviewer: str
    created_at: datetime
    human_reviewed: bool


class ExplainRequest(BaseModel):
    text: str = PField(min_length=1, description="The very input of the prediction, again.")


class TokenAttribution(BaseModel):
    token: str
    start: int | None = None
    end: int | None = None
    attribution: float


class ExplanationOut(BaseModel):
    prediction_id: str
    model_version_id: str
    model_version: int
    label: str
    score: float
    method: str
    baseline: str
    tokens: list[TokenAttribution]


class CaseTextPublic(BaseModel):
    """The input text of a review case (``GET .../predictions/{id}/case``), for the person
    who may decide its review; kept until the review closes, its retention ends or the
    subject is erased, then crypto-shredded."""

    prediction_id: str
    text: str
    sealed_at: datetime
    retained_until: datetime
