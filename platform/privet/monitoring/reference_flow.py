"""Rebuilding a version's drift reference on request (``POST
.../models/{m}/versions/{v}:monitoring-reference``, ``privet monitor reference``).

Approval builds the reference by itself (``reference.build_after_approval``); this is the
flow an operator runs again when that build failed or an outage left it ``pending``. A
failure is recorded (``monitoring.reference_failed``) and returned rather than raised, so
that its event commits with the caller's decision; a ready reference is kept when a
rebuild fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from privet.crypto.context import ServiceRuntime
from privet.kit.errors import ConflictError
from privet.models.tables import ModelVersion
from privet.monitoring import reference as references
from privet.monitoring.schemas import ReferenceStatus
from privet.monitoring.settings import MonitoringSettings


@dataclass(frozen=True)
class RebuildFailed:
    """A rebuild that failed: the problem to answer with (its extensions say why, which
    version, and the reference's status now)."""

    error: references.ReferenceBuildError


def rebuild_reference(
    session: Session,
    *,
    runtime: ServiceRuntime,
    service: Any,
    version: ModelVersion,
    model_name: str,
    cfg: MonitoringSettings,
    actor: str,
) -> ReferenceStatus | RebuildFailed:
    """Decrypt the version's evaluation split in memory, classify at most
    ``cfg.reference_max_rows`` of its rows with ``service`` (the process's inference
    service) and store only their aggregates, in ``session``'s transaction.

    Raises ConflictError for a version that does not serve (approved or suspended)."""
    if version.state not in references.SERVING_STATES:
        raise ConflictError(
            f"model version {version.number} of {model_name!r} is {version.state}; a "
            "monitoring reference is built for approved (or suspended) versions",
            state=version.state,
        )
    try:
        with session.begin_nested():  # reads only; a database error leaves the request usable
            computed = references.compute_version_reference(
                session, runtime=runtime, service=service, version=version, cfg=cfg
            )
    except Exception as exc:
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
        session,
        version_id=version.id,
        project_id=version.project_id,
        computed=computed,
        actor=actor,
        trigger="rebuild",
    )
    return references.reference_status(session, version)
