"""The text of a job's failure, sealed at rest.

An exception raised while training may quote what it choked on (a training row, a
tokenizer input), so its message is neither logged in the ledger nor stored in plaintext:
the ledger records an error code (``JobEnd``) and the exception's class name, and the
message is sealed with a data key of the job's own (``training_job_error``) for the job's
readers to see through the API.
"""

from __future__ import annotations

import re

from sqlmodel import Session

from privet.crypto import (
    DataKeyDestroyedError,
    DataKeyNotFoundError,
    KeyProvider,
    ObjectRef,
    create_data_key,
    seal,
    unseal,
    unwrap_data_key,
)
from privet.jobs.tables import TrainingJob

ERROR_KIND = "training_job_error"
MAX_ERROR_CHARS = 4000
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,99}")


def error_ref(job: TrainingJob) -> ObjectRef:
    return ObjectRef(ERROR_KIND, job.id, job.project_id)


def class_name(exc: BaseException) -> str:
    """The exception's class name: code, never data (the ledger may hold it)."""
    name = type(exc).__name__
    return name if _CLASS_NAME.fullmatch(name) else "Exception"


def seal_error(session: Session, *, provider: KeyProvider, job: TrainingJob, text: str) -> None:
    """Seal ``text`` onto ``job`` (in ``session``'s transaction) with the job's error key."""
    ref = error_ref(job)
    handle = create_data_key(session=session, provider=provider, ref=ref)
    job.error_sealed = seal(
        text[:MAX_ERROR_CHARS].encode(), data_key=handle.key, key_ref=handle.key_id, ref=ref
    )


def error_detail(session: Session, *, provider: KeyProvider, job: TrainingJob) -> str | None:
    """The sealed failure text of ``job`` (None when it has none, or it was shredded)."""
    if job.error_sealed is None:
        return None
    ref = error_ref(job)
    try:
        handle = unwrap_data_key(session=session, provider=provider, ref=ref)
    except (DataKeyDestroyedError, DataKeyNotFoundError):
        return None
    return unseal(job.error_sealed, data_key=handle.key, key_ref=handle.key_id, ref=ref).decode()
