"""The base-model registry: register, list (keyset pages by name), show, retire; the
allow-list admission reads.

Only registered base models, pinned by the digests of their weight and tokenizer files,
may be fine-tuned. A registration and a retirement are each one ledger event in the
caller's transaction. Retiring admits no new jobs on the model; versions already trained
on it keep serving (their loads still check every file against the pinned digests).
The shipped MiniLM-L6 is the registry's first entry (migration 0019).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from privet import ledger
from privet.basemodels.inspect import inspect_folder
from privet.basemodels.licences import given_licence, licence_details
from privet.basemodels.schemas import BaseModelCreate
from privet.basemodels.settings import get_base_model_settings
from privet.basemodels.tables import SHIPPED_PATH, BaseModelRow, BaseModelState
from privet.kit.errors import ConflictError, NotFoundError
from privet.kit.ids import new_id, utcnow
from privet.kit.paging import Keyset, Page
from privet.training.catalog import BaseModelSpec, minilm_path


def register_base_model(session: Session, *, data: BaseModelCreate, actor_id: str) -> BaseModelRow:
    """Inspect the folder (hostile input: see privet.basemodels.inspect), pin it, ledger it.

    Raises InvalidInputError / PayloadTooLargeError for a folder that breaks a rule and
    ConflictError for a name already taken (retired names stay taken)."""
    settings = get_base_model_settings()
    if session.exec(select(BaseModelRow).where(BaseModelRow.name == data.name)).first():
        raise ConflictError(f"a base model named {data.name!r} is already registered")
    given = given_licence(data.license, data.licence_text)  # before any file is read
    found = inspect_folder(
        data.path,
        roots=settings.roots,
        max_file_bytes=settings.max_file_bytes,
        pooling=data.pooling,
        licence=given,
    )
    row = BaseModelRow(
        id=new_id("bm"),
        name=data.name,
        path=str(found.path),
        digests=found.digests,
        sizes=found.sizes,
        model_type=found.model_type,
        architecture=found.architecture,
        vocab_size=found.vocab_size,
        vocab_coverage=found.vocab_coverage,
        max_positions=found.max_positions,
        pooling=found.pooling,
        pooling_source=found.pooling_source,
        license=found.licence.spdx,
        licence_text=found.licence.text,
        description=data.description,
        registered_by=actor_id,
        registered_at=utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same name
        raise ConflictError(f"a base model named {data.name!r} is already registered") from exc
    ledger.emit(
        session,
        type="base_model.registered",
        actor=actor_id,
        objects={"base_model": row.id},
        details={
            "name": row.name,
            "model_type": row.model_type,
            "pooling": row.pooling,
            "files": [{"file": n, "sha256": d} for n, d in sorted(row.digests.items())],
            **licence_details(found.licence),
        },
    )
    return row


BASE_MODEL_ORDER = Keyset(columns=(col(BaseModelRow.name),), kinds=(str,))
"""The registry lists by name (unique: the key names one row; its unique index serves it)."""


def page_base_models(
    session: Session, *, after: str | None = None, limit: int = 100
) -> Page[BaseModelRow]:
    """A page of the registry, active and retired, by name, from the cursor ``after``."""
    rows = session.exec(BASE_MODEL_ORDER.page(select(BaseModelRow), after=after, limit=limit)).all()
    return BASE_MODEL_ORDER.split(rows, limit=limit, key=lambda r: (r.name,))


def get_base_model(session: Session, *, name: str) -> BaseModelRow:
    row = session.exec(select(BaseModelRow).where(BaseModelRow.name == name)).first()
    if row is None:
        raise NotFoundError(f"no base model named {name!r}")
    return row


def retire_base_model(session: Session, *, name: str, actor_id: str) -> BaseModelRow:
    """No new job may start from the model; its trained versions keep serving."""
    row = get_base_model(session, name=name)
    if row.state == BaseModelState.retired.value:
        raise ConflictError(f"base model {name!r} is already retired", state=row.state)
    row.state = BaseModelState.retired.value
    row.retired_by = actor_id
    row.retired_at = utcnow()
    session.add(row)
    ledger.emit(
        session,
        type="base_model.retired",
        actor=actor_id,
        objects={"base_model": row.id},
        details={"name": row.name},
    )
    return row


def is_admissible(session: Session, *, name: str, legacy: Callable[[], Sequence[str]]) -> bool:
    """Whether a new job may start from `name`: an active registry entry; a name the
    registry does not hold falls back to `legacy` (PRIVET_JOBS_EXTRA_CATALOG's file)."""
    row = session.exec(select(BaseModelRow).where(BaseModelRow.name == name)).first()
    if row is not None:
        return row.state == BaseModelState.active.value
    return name in legacy()


def spec_of(row: BaseModelRow) -> BaseModelSpec:
    """The catalog spec a worker or server loads the model with (pinned digests)."""
    path = minilm_path() if row.path == SHIPPED_PATH else Path(row.path)
    return BaseModelSpec(
        name=row.name,
        path=path,
        digests=dict(row.digests),
        description=row.description,
        license=row.license if row.license is not None else (row.licence_text or ""),
        pooling=row.pooling,
    )


def resolver(engine: Engine) -> Callable[[str], BaseModelSpec | None]:
    """Look a name up in the registry of `engine`'s database (retired entries too: their
    versions keep serving); plugged into the process catalog by privet.runtime."""

    def resolve(name: str) -> BaseModelSpec | None:
        with Session(engine) as session:
            row = session.exec(select(BaseModelRow).where(BaseModelRow.name == name)).first()
            return None if row is None else spec_of(row)

    return resolve
