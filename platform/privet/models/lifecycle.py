"""Model version state changes: candidate → approved → retired (see `TRANSITIONS`).

Both lock the version's row and ledger the change in the caller's transaction; approval
also refuses while an erasure flag is open (`service.check_no_open_erasure_flag`).
"""

from __future__ import annotations

from sqlmodel import Session

from privet import ledger
from privet.kit.errors import ConflictError
from privet.kit.ids import utcnow
from privet.models.service import check_no_open_erasure_flag, lock_version
from privet.models.tables import TRANSITIONS, ModelVersion, ModelVersionState


def _transition(version: ModelVersion, target: ModelVersionState) -> None:
    if target not in TRANSITIONS[ModelVersionState(version.state)]:
        raise ConflictError(
            f"model version {version.id} is {version.state}; it cannot become {target.value}",
            state=version.state,
        )


def approve(
    session: Session, *, version: ModelVersion, actor_id: str, actor_ref: str
) -> ModelVersion:
    """candidate → approved (segregation of duties is decided by policy before this); never
    while an erasure flag is open (rule `model.erasure-flag-unresolved`)."""
    locked = lock_version(session, version)
    _transition(locked, ModelVersionState.approved)
    check_no_open_erasure_flag(session, version=locked)
    locked.state = ModelVersionState.approved.value
    locked.approved_at = utcnow()
    locked.approved_by = actor_ref
    session.add(locked)
    ledger.emit(
        session,
        type="model_version.approved",
        actor=actor_id,
        project=locked.project_id,
        objects={"model": locked.model_id, "model_version": locked.id},
        digests={"weights": f"sha256:{locked.weights_sha256}"},
    )
    return locked


def retire(
    session: Session, *, version: ModelVersion, actor_id: str, actor_ref: str, reason: str | None
) -> ModelVersion:
    """candidate | approved → retired (no longer serves; kept for audit)."""
    locked = lock_version(session, version)
    _transition(locked, ModelVersionState.retired)
    previous = locked.state
    locked.state = ModelVersionState.retired.value
    locked.retired_at = utcnow()
    locked.retired_by = actor_ref
    locked.retire_reason = reason
    session.add(locked)
    ledger.emit(
        session,
        type="model_version.retired",
        actor=actor_id,
        project=locked.project_id,
        objects={"model": locked.model_id, "model_version": locked.id},
        details={"from_state": previous},
    )
    return locked
