"""Request and response schemas of the compliance domain (its tables:
``privet.compliance.tables``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import StringConstraints, field_validator, model_validator
from sqlmodel import Field, SQLModel

from privet.compliance.tables import Channel, Regime, RequestType
from privet.kit.schemas import StrictSchema

SubjectId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]


class DataSubjectRequestCreate(StrictSchema):
    type: RequestType
    subject_id: SubjectId = Field(description="The subject's id as the datasets record it.")
    regime: Regime = Field(default=Regime.gdpr, description="gdpr (Art. 12(3)) or ccpa.")
    requester: str = Field(
        default="data subject",
        min_length=1,
        max_length=200,
        description="Who made the request (the subject, an authorised agent...); sealed.",
    )
    channel: Channel = Field(
        default=Channel.api,
        description="How it was received: email, web_form, letter, phone, in_person, api "
        "or other (an enumeration: describe the sender in `requester`, which is sealed).",
    )
    received_date: date | None = Field(
        default=None, description="When the request was received (default: today, UTC)."
    )
    purposes: list[Token] = Field(
        default_factory=list,
        max_length=32,
        description="Objection only: the purposes objected to (empty: all processing).",
    )

    @field_validator("received_date")
    @classmethod
    def _not_in_future(cls, value: date | None) -> date | None:
        if value is not None and value > datetime.now(UTC).date():
            raise ValueError("received_date cannot be in the future")
        return value

    @model_validator(mode="after")
    def _purposes_for_objection(self) -> DataSubjectRequestCreate:
        if self.purposes and self.type != RequestType.objection:
            raise ValueError("purposes apply to objection requests only")
        return self


class DataSubjectRequestPublic(SQLModel):
    """A request as the API shows it: no subject id (use the report for that)."""

    id: str
    type: str
    regime: str
    state: str
    channel: str
    purposes: list[str]
    received_at: datetime
    acknowledge_due: datetime | None
    acknowledged_at: datetime | None
    due_at: datetime
    completed_at: datetime | None
    retain_until: datetime
    submitted_by: str
    outcome: str | None
    on_time: bool | None = Field(description="Completed by its deadline (null: still open).")
    result: dict[str, Any]


class ProjectComplianceUpdate(StrictSchema):
    controller: str = Field(default="", max_length=200)
    controller_contact: str = Field(default="", max_length=200)
    dpo_contact: str = Field(default="", max_length=200)
    subject_categories: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=32
    )
    recipients: list[Annotated[str, StringConstraints(max_length=200)]] = Field(
        default_factory=list, max_length=32
    )
    transfers: str = Field(default="", max_length=500)


class ProjectCompliancePublic(ProjectComplianceUpdate):
    project_id: str
    updated_at: datetime | None = None
    updated_by: str | None = None
