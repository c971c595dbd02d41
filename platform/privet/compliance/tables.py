"""Tables of the compliance domain: data-subject requests (the request log) and each
project's controller/DPO facts for the record of processing activities; their request and
response schemas are ``privet.compliance.schemas``. (Model versions flagged by an erasure
are `privet.models.tables.ModelVersionFlag`: approval, in the registry, checks them.)

Nothing here holds a subject identifier in plaintext: a request keeps the subject id and
the requester's contact sealed with the request's own data key (crypto-shredded when the
request log entry expires) and the subject's pseudonym (hmac-sha256) for look-ups.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, String
from sqlmodel import Field, SQLModel

from privet.kit.types import UTCDateTime
from privet.models.tables import FLAG_ID_PREFIX as FLAG_ID_PREFIX  # the flags live with
from privet.models.tables import ModelVersionFlag as ModelVersionFlag  # the model registry

DSR_ID_PREFIX = "dsr"
SEAL_KIND = "dsr_subject"
SEAL_PROJECT = "platform"


class RequestType(StrEnum):
    access = "access"
    erasure = "erasure"
    objection = "objection"


class Regime(StrEnum):
    gdpr = "gdpr"
    ccpa = "ccpa"


class RequestState(StrEnum):
    received = "received"
    acknowledged = "acknowledged"
    completed = "completed"
    refused = "refused"


class Channel(StrEnum):
    """How a request was received: an enumeration, so the request log and its ledger
    events never hold free text (who sent it is the sealed ``requester``)."""

    email = "email"
    web_form = "web_form"
    letter = "letter"
    phone = "phone"
    in_person = "in_person"
    api = "api"
    other = "other"


class Remedy(StrEnum):
    retrain = "retrain"
    keep_with_dp = "keep_with_dp"


class DataSubjectRequest(SQLModel, table=True):
    """One entry of the request log (CCPA §7101: kept at least 24 months)."""

    __tablename__ = "data_subject_requests"
    #: the pages of GET /v1/data-subject-requests, newest first, per filter (0017)
    __table_args__ = (
        Index("ix_data_subject_requests_received", "received_at", "id"),
        Index("ix_data_subject_requests_type_received", "type", "received_at", "id"),
        Index("ix_data_subject_requests_state_received", "state", "received_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    type: str = Field(max_length=20)
    regime: str = Field(max_length=10)
    state: str = Field(max_length=20)
    channel: str = Field(max_length=40)
    subject_digest: str = Field(sa_column=Column(String(80), index=True, nullable=False))
    sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    data_key_id: str | None = Field(default=None, max_length=40)
    purposes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    acknowledge_due: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    retain_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    submitted_by: str = Field(max_length=40)
    outcome: str | None = Field(default=None, max_length=500)
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ProjectComplianceSettings(SQLModel, table=True):
    """What the RoPA needs beyond dataset declarations (GDPR Art. 30(1)(a), (d), (e))."""

    __tablename__ = "project_compliance_settings"

    project_id: str = Field(primary_key=True, max_length=40)
    controller: str = Field(default="", max_length=200)
    controller_contact: str = Field(default="", max_length=200)
    dpo_contact: str = Field(default="", max_length=200)
    subject_categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    recipients: list[str] = Field(sa_column=Column(JSON, nullable=False))
    transfers: str = Field(default="", max_length=500)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_by: str = Field(max_length=40)
