"""Carrying out a data-subject request: intake, access (Art. 15), erasure (Art. 17) and
objection (Art. 21), each in the caller's transaction.

A request is received, acknowledged and carried out at once; each step is a ledger event
that names the subject by pseudonym only. Everything about datasets, models, jobs and
predictions is done through their own services (an erasure's retraining is admitted by
``privet.jobs.admission.admit``, like the gateway's); this module decides nothing they
already decide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from privet.auth import service as auth_service
from privet.auth.identity import Identity
from privet.auth.tables import Principal, Project
from privet.compliance.deadlines import deadlines
from privet.compliance.discovery import discover
from privet.compliance.remedies import choose_remedy, remedy_rule
from privet.compliance.schemas import DataSubjectRequestCreate
from privet.compliance.service import record_event, seal_ref, subject_pseudonym
from privet.compliance.settings import ComplianceSettings, get_compliance_settings
from privet.compliance.tables import (
    DSR_ID_PREFIX,
    DataSubjectRequest,
    Remedy,
    RequestState,
    RequestType,
)
from privet.crypto import create_data_key, seal
from privet.crypto.context import ServiceRuntime
from privet.datasets.erasure import erase_subjects_in_project
from privet.inference import cases, reasons
from privet.jobs import admission
from privet.jobs.admission import Authorize
from privet.jobs.schemas import TrainingJobCreate
from privet.jobs.tables import TrainingJob
from privet.kit.ids import new_id, utcnow
from privet.ledger.emit import prose_in
from privet.models import service as models_service
from privet.models.tables import FlagSource, ModelVersion

# --- intake ------------------------------------------------------------------------------------


def submit_request(
    session: Session,
    *,
    runtime: ServiceRuntime,
    data: DataSubjectRequestCreate,
    actor: Identity,
    authorize: Authorize | None = None,
    config: ComplianceSettings | None = None,
) -> DataSubjectRequest:
    """Log, acknowledge and carry out a request in ``session``'s transaction.

    ``authorize`` decides the retraining jobs an erasure submits on behalf of their
    original submitters (None: none is submitted; the flags say to retrain manually)."""
    config = config or get_compliance_settings()
    row = _log_request(session, runtime=runtime, data=data, actor=actor, config=config)
    row.state = RequestState.acknowledged.value
    row.acknowledged_at = utcnow()
    record_event(session, row, "dsr.acknowledged", actor=actor.principal_id)
    if data.type == RequestType.access:
        findings = discover(session, runtime=runtime, subject_id=data.subject_id)
        row.result = {"findings": findings.summary()}
        row.outcome = (
            "access report prepared: "
            f"{len(findings.datasets)} dataset version(s), {len(findings.models)} model "
            f"version(s), {len(findings.predictions)} prediction(s)"
        )
    elif data.type == RequestType.erasure:
        row.result = _erase(
            session,
            runtime=runtime,
            row=row,
            subject_id=data.subject_id,
            actor=actor,
            authorize=authorize,
            config=config,
        )
        row.outcome = (
            f"erased: {row.result['rows_removed']} row(s) from "
            f"{len(row.result['datasets'])} dataset(s); "
            f"{len(row.result['shredded_versions'])} version(s) shredded; "
            f"{len(row.result['flags'])} model version(s) flagged"
        )
    else:
        _record_objection(session, runtime=runtime, row=row, data=data, actor=actor)
    row.state = RequestState.completed.value
    row.completed_at = utcnow()
    session.add(row)
    record_event(
        session,
        row,
        "dsr.completed",
        actor=actor.principal_id,
        details={"on_time": row.completed_at <= row.due_at, "summary": _short(row.result)},
    )
    session.flush()
    return row


def _log_request(
    session: Session,
    *,
    runtime: ServiceRuntime,
    data: DataSubjectRequestCreate,
    actor: Identity,
    config: ComplianceSettings,
) -> DataSubjectRequest:
    """The request's log entry, its deadlines and its sealed subject id; ``dsr.received``."""
    now = utcnow()
    received_day = data.received_date or now.date()
    received_at = (
        now
        if data.received_date is None
        else datetime.combine(received_day, time(0, 0), tzinfo=UTC)
    )
    ack_due, due = deadlines(
        data.regime.value,
        received_day,
        ack_business_days=config.ccpa_acknowledge_business_days,
        response_days=config.ccpa_response_days,
    )
    request_id = new_id(DSR_ID_PREFIX)
    ref = seal_ref(request_id)
    handle = create_data_key(session=session, provider=runtime.key_provider, ref=ref)
    sealed = seal(
        json.dumps({"subject_id": data.subject_id, "requester": data.requester}).encode(),
        data_key=handle.key,
        key_ref=handle.key_id,
        ref=ref,
    )
    row = DataSubjectRequest(
        id=request_id,
        type=data.type.value,
        regime=data.regime.value,
        state=RequestState.received.value,
        channel=data.channel.value,
        subject_digest=subject_pseudonym(runtime, data.subject_id),
        sealed=sealed,
        data_key_id=handle.key_id,
        purposes=list(data.purposes),
        received_at=received_at,
        acknowledge_due=ack_due,
        due_at=due,
        retain_until=received_at + timedelta(days=config.request_log_days),
        submitted_by=actor.principal_id,
        result={},
        created_at=now,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        row,
        "dsr.received",
        actor=actor.principal_id,
        details={
            "channel": data.channel.value,
            "received_at": received_at.isoformat(),
            "due_at": due.isoformat(),
            "acknowledge_due": ack_due.isoformat() if ack_due else None,
        },
    )
    return row


def _record_objection(
    session: Session,
    *,
    runtime: ServiceRuntime,
    row: DataSubjectRequest,
    data: DataSubjectRequestCreate,
    actor: Identity,
) -> None:
    findings = discover(session, runtime=runtime, subject_id=data.subject_id)
    row.result = {
        "findings": findings.summary(),
        "purposes": list(data.purposes) or ["all"],
        "effect": "the objection is recorded against the subject's pseudonym; "
        "processing for these purposes must stop (see has_objection)",
    }
    row.outcome = f"objection recorded for {', '.join(row.result['purposes'])}"
    record_event(
        session,
        row,
        "dsr.objection.recorded",
        actor=actor.principal_id,
        details={"purposes": row.result["purposes"]},
    )


def _short(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, list):
            out[key] = len(value)
        elif isinstance(value, dict):
            out[key] = _short(value)
        elif isinstance(value, str):
            if prose_in({key: value}) is None:  # sentences stay in the request log only
                out[key] = value
        elif isinstance(value, int | bool) or value is None:
            out[key] = value
    return out


# --- erasure -----------------------------------------------------------------------------------


@dataclass
class _Erased:
    """What erasing the subject's rows did, across every project."""

    datasets: list[dict[str, Any]] = field(default_factory=list)
    rows_removed: int = 0
    shredded: list[str] = field(default_factory=list)
    #: shredded version id -> the version written without the subject
    new_versions: dict[str, str] = field(default_factory=dict)
    #: model version id -> the erased dataset versions it was trained on
    affected: dict[str, set[str]] = field(default_factory=dict)


def _erase(
    session: Session,
    *,
    runtime: ServiceRuntime,
    row: DataSubjectRequest,
    subject_id: str,
    actor: Identity,
    authorize: Authorize | None,
    config: ComplianceSettings,
) -> dict[str, Any]:
    erased = _erase_rows(session, runtime=runtime, subject_id=subject_id, actor=actor)
    flags = _flag_models(
        session, row=row, erased=erased, actor=actor, authorize=authorize, config=config
    )
    reasons_shredded = reasons.shred_subject_reasons(session, subject_digest=row.subject_digest)
    cases_shredded = cases.shred_subject_cases(
        session, subject_digest=row.subject_digest, actor=actor.principal_id
    )
    return {
        "datasets": erased.datasets,
        "rows_removed": erased.rows_removed,
        "review_reasons_shredded": reasons_shredded,
        "case_texts_shredded": cases_shredded,
        "shredded_versions": sorted(set(erased.shredded)),
        "new_versions": sorted(set(erased.new_versions.values())),
        "flags": flags,
        "remedy_policy": config.erasure_remedy,
    }


def _erase_rows(
    session: Session, *, runtime: ServiceRuntime, subject_id: str, actor: Identity
) -> _Erased:
    results = []
    for project in session.exec(select(Project).order_by(col(Project.id))).all():
        results.extend(
            erase_subjects_in_project(
                session,
                provider=runtime.key_provider,
                store=runtime.blobs,
                settings=runtime.settings,
                project_id=project.id,
                subject_ids=[subject_id],
                actor=actor.principal_id,
            )
        )
    erased = _Erased()
    for res in results:
        erased.rows_removed += res.rows_removed
        erased.shredded.extend(res.shredded_versions)
        if res.subjects_found:
            erased.datasets.append(
                {
                    "dataset": res.dataset_id,
                    "rows_removed": res.rows_removed,
                    "new_version": res.new_version.id if res.new_version else None,
                    "shredded_versions": list(res.shredded_versions),
                }
            )
        for old in res.shredded_versions:
            if res.new_version is not None:
                erased.new_versions[old] = res.new_version.id
        for usage in res.affected:
            if usage.used_by_kind == "model_version":
                erased.affected.setdefault(usage.used_by_id, set()).add(usage.dataset_version_id)
    return erased


def _flag_models(
    session: Session,
    *,
    row: DataSubjectRequest,
    erased: _Erased,
    actor: Identity,
    authorize: Authorize | None,
    config: ComplianceSettings,
) -> list[dict[str, Any]]:
    """Flag every model version trained on erased rows with the policy's remedy (and a
    retraining job where the remedy is to retrain)."""
    flags = []
    for version_id in sorted(erased.affected):
        version = session.get(ModelVersion, version_id)
        if version is None:
            continue
        remedy, why = choose_remedy(version, config)
        rule = remedy_rule(version, config, remedy)
        job_id = None
        if remedy == Remedy.retrain:
            job_id, what = _retrain(
                session, version=version, new_versions=erased.new_versions, authorize=authorize
            )
            why = f"{why}; {what}"
        flag = models_service.flag_erasure(
            session,
            version=version,
            source=FlagSource.erasure_request,
            dataset_version_ids=sorted(erased.affected[version_id]),
            remedy=remedy.value,
            remedy_rule=rule,
            justification=why,
            actor=actor.principal_id,
            request_id=row.id,
            retrain_job_id=job_id,
        )
        flags.append(
            {
                "model_version": version.id,
                "project": version.project_id,
                "remedy": remedy.value,
                "justification": why,
                "retrain_job": job_id,
                "state": flag.state,
            }
        )
    return flags


def _submitter_identity(session: Session, principal_id: str) -> Identity | None:
    principal = session.get(Principal, principal_id)
    if principal is None:
        return None
    return Identity(
        principal_id=principal.id,
        kind=principal.kind,
        name=principal.name,
        bindings=auth_service.bindings_of(session, principal_id=principal.id),
        method="system",
        accountable_id=principal.accountable_human_id,
    )


def _retrain(
    session: Session,
    *,
    version: ModelVersion,
    new_versions: dict[str, str],
    authorize: Authorize | None,
) -> tuple[str | None, str]:
    """Submit a job like the version's own on the dataset versions without the subject,
    admitted like the gateway's; (job id or None, what happened)."""
    job = session.get(TrainingJob, version.job_id)
    if job is None:
        return None, "the original training job is unknown: retrain manually"
    target = new_versions.get(job.dataset_version_id)
    if target is None:
        return None, "no dataset version without the subject was written: retrain manually"
    identity = _submitter_identity(session, job.submitted_by_id)
    if identity is None or authorize is None:
        return None, "the original submitter is unknown: retrain manually"
    params = dict(job.params)
    params.update(dataset_version_id=target, model_name=job.model_name, purpose=job.purpose)
    data = TrainingJobCreate.model_validate(params)
    outcome = admission.admit(
        session, project_id=job.project_id, data=data, actor=identity, authorize=authorize
    )
    if isinstance(outcome, admission.Refused):
        if outcome.reason == "policy":
            return None, f"retraining refused by policy (job {outcome.job_id}): retrain manually"
        return None, f"retraining refused: privacy budget exceeded (job {outcome.job_id})"
    new_job = outcome.job
    return new_job.id, f"retraining job {new_job.id} queued on dataset version {target}"
