"""The one table of the crypto package: the data-key registry's rows (used by
``privet.crypto.datakeys``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from privet.crypto.refs import ObjectRef
from privet.kit.types import UTCDateTime


class DataKey(SQLModel, table=True):
    """A wrapped data key and the object it protects. `wrapped_key` is NULL once shredded."""

    __tablename__ = "data_keys"
    __table_args__ = (
        UniqueConstraint("object_kind", "object_id", name="uq_data_keys_object"),
        Index("ix_data_keys_kek", "kek_id", "kek_version"),
    )

    id: str = Field(primary_key=True, max_length=40)
    object_kind: str = Field(max_length=100)
    object_id: str = Field(max_length=100)
    project_id: str = Field(max_length=100, index=True)
    wrapped_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary()))
    kek_id: str = Field(max_length=200)
    kek_version: int
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    destroyed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.object_kind, self.object_id, self.project_id)
