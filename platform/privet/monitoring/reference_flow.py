"""Running a version's drift-reference build: after its approval commits
(``build_after_approval``, a background task of the approval request), and again on request
(``POST .../models/{m}/versions/{v}:monitoring-reference``, ``privet monitor reference``)
when that build failed or an outage left it ``pending``.

Neither holds a database transaction during the forward passes (on SQLite a writing one
would hold the write lock for seconds, and every predict and approval would queue behind
it): the inputs are read in a snapshot that ends before the model runs, and the result is
written in one short transaction that re-reads the version first. A version retired (or
sent back) meanwhile gets ``model-version-not-serving`` and nothing is written. Any other
failure is recorded (``monitoring.reference_failed``); a ready reference is kept when a
rebuild fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from privet.crypto.context import ServiceRuntime
from privet.db import read_session, session_scope
from privet.inference.versions import VersionNotServingError
from privet.kit.errors import NotFoundError
from privet.models.tables import ModelVersion
from privet.monitoring import reference as references
from privet.monitoring.schemas import ReferenceStatus
from privet.monitoring.settings import MonitoringSettings
from privet.monitoring.tables import REFERENCE_FAILED, REFERENCE_READY

log = logging.getLogger("privet.monitoring")


@dataclass(frozen=True)
class RebuildFailed:
    """A rebuild that failed: the problem to answer with (its extensions say why, which
    version, and the reference's status now)."""

    error: references.ReferenceBuildError


def compute_reference(
    *, runtime: ServiceRuntime, service: Any, version_id: str, cfg: MonitoringSettings
) -> references.ComputedReference:
    """Read the version's evaluation rows in a snapshot of their own, then classify them
    (``service``: the process's inference service) with no transaction open. Writes
    nothing; raises what reading or classifying raised."""
    with read_session(runtime.engine) as reader:
        version = reader.get(ModelVersion, version_id)
        if version is None:  # pragma: no cover - versions are never deleted
            raise NotFoundError(f"model version {version_id!r} does not exist")
        inputs = references.read_inputs(reader, runtime=runtime, version=version, cfg=cfg)
    return references.classify_inputs(service, inputs, cfg)


def rebuild_reference(
    session: Session,
    *,
    runtime: ServiceRuntime,
    service: Any,
    version_id: str,
    cfg: MonitoringSettings,
    actor: str,
) -> ReferenceStatus | RebuildFailed:
    """Rebuild an authorized version's reference: computed outside any transaction, then
    stored in ``session``'s (the request's, first used here). A failure is recorded there
    and returned, so that its event commits with the caller's decision.

    Raises ``VersionNotServingError`` (nothing written) for a version that does not serve,
    or stopped serving while the reference was being built."""
    try:
        computed = compute_reference(
            runtime=runtime, service=service, version_id=version_id, cfg=cfg
        )
    except VersionNotServingError:
        raise
    except Exception as exc:
        version = _version(session, version_id)
        reason, detail = references.record_failure(
            session, version=version, exc=exc, actor=actor, trigger="rebuild"
        )
        return RebuildFailed(
            references.ReferenceBuildError(
                detail,
                reason=reason,
                model_version=version.id,
                reference_status=references.reference_status(session, version).status,
            )
        )
    references.store_reference(
        session, version_id=version_id, computed=computed, actor=actor, trigger="rebuild"
    )
    return references.reference_status(session, _version(session, version_id))


def build_after_approval(
    *,
    runtime: ServiceRuntime,
    service: Any,
    version_id: str,
    actor: str | None,
    cfg: MonitoringSettings,
) -> str:
    """Build an approved version's reference once the approval committed. Returns the
    resulting status: ``ready``; ``failed`` (recorded, re-run it on request); or ``none``
    when the version stopped serving before the build was stored (nothing written)."""
    try:
        computed = compute_reference(
            runtime=runtime, service=service, version_id=version_id, cfg=cfg
        )
        with session_scope(runtime.engine) as session:
            references.store_reference(
                session, version_id=version_id, computed=computed, actor=actor, trigger="approval"
            )
        return REFERENCE_READY
    except VersionNotServingError as exc:
        log.warning("monitoring reference not recorded: %s", exc.detail)
        return "none"
    except Exception as exc:
        log.warning(
            "monitoring reference of model version %s not built (%s); re-run it with "
            "POST .../versions/N:monitoring-reference",
            version_id,
            references.failure_reason(exc)[0],
        )
        try:
            with session_scope(runtime.engine) as session:
                references.record_failure(
                    session,
                    version=_version(session, version_id),
                    exc=exc,
                    actor=actor,
                    trigger="approval",
                )
        except Exception:  # pragma: no cover - the database itself failed
            log.exception("could not record the failed reference of %s", version_id)
        return REFERENCE_FAILED


def _version(session: Session, version_id: str) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:  # pragma: no cover - versions are never deleted
        raise NotFoundError(f"model version {version_id!r} does not exist")
    return version
