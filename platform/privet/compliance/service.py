"""Data-subject requests: intake, deadlines, access (Art. 15), erasure (Art. 17),
objection (Art. 21), and the request log (CCPA §7101).

A request is received, acknowledged and carried out in the caller's transaction; each
step is a ledger event that names the subject by pseudonym only. The subject id and the
requester are kept sealed with the request's own data key, so the access report can show
the subject their own id while the database holds no identifier in plaintext, and the
seal is crypto-shredded when the log entry expires.

Everything about datasets, models, jobs and predictions is read through their own
services and tables; this module decides nothing they already decide.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from privet import ledger
from privet.auth.identity import Identity
from privet.auth.tables import Principal, Project
from privet.compliance.deadlines import deadlines
from privet.compliance.settings import ComplianceSettings, get_compliance_settings
from privet.compliance.tables import (
    DSR_ID_PREFIX,
    SEAL_KIND,
    SEAL_PROJECT,
    DataSubjectRequest,
    DataSubjectRequestCreate,
    DataSubjectRequestPublic,
    ProjectCompliancePublic,
    ProjectComplianceSettings,
    ProjectComplianceUpdate,
    Remedy,
    RequestState,
    RequestType,
)
from privet.crypto import ObjectRef, create_data_key, seal, shred, unseal, unwrap_data_key
from privet.crypto.errors import DataKeyDestroyedError
from privet.datasets.erasure import erase_subjects_in_project
from privet.datasets.pseudonym import pseudonymisation_key, pseudonymise
from privet.datasets.rows import iter_version_rows
from privet.datasets.tables import AffectedUsage, Dataset, DatasetVersion, VersionState
from privet.datasets.usage import usages_of
from privet.inference import reasons
from privet.inference.tables import Prediction, PredictionReview
from privet.kit.errors import ConflictError, NotFoundError, PrivetError
from privet.kit.ids import new_id, utcnow
from privet.ledger.emit import prose_in
from privet.models import service as models_service
from privet.models.tables import FlagSource, FlagState, Model, ModelVersion, ModelVersionFlag

SYSTEM_ACTOR = "system:compliance"

Decide = Callable[[Identity, str, dict[str, Any]], tuple[bool, list[str], str | None]]
"""(identity, project id, context) → (allowed, policy ids, policy version) for a retrain
job's `training_job.submit`; the gateway passes one that records the decision."""


class SubjectIdUnavailableError(PrivetError):
    status = 410
    slug = "subject-id-shredded"
    title = "Subject id no longer held"


# --- helpers -------------------------------------------------------------------------------


def _seal_ref(request_id: str) -> ObjectRef:
    return ObjectRef(SEAL_KIND, request_id, SEAL_PROJECT)


def subject_pseudonym(runtime: Any, subject_id: str) -> str:
    return pseudonymise(pseudonymisation_key(runtime.settings), subject_id)


def public(row: DataSubjectRequest) -> DataSubjectRequestPublic:
    on_time = None
    if row.completed_at is not None:
        on_time = row.completed_at <= row.due_at
    return DataSubjectRequestPublic(
        id=row.id,
        type=row.type,
        regime=row.regime,
        state=row.state,
        channel=row.channel,
        purposes=list(row.purposes),
        received_at=row.received_at,
        acknowledge_due=row.acknowledge_due,
        acknowledged_at=row.acknowledged_at,
        due_at=row.due_at,
        completed_at=row.completed_at,
        retain_until=row.retain_until,
        submitted_by=row.submitted_by,
        outcome=row.outcome,
        on_time=on_time,
        result=dict(row.result),
    )


def _event(
    session: Session,
    row: DataSubjectRequest,
    type: str,
    *,
    actor: str | None,
    details: dict[str, Any] | None = None,
    outcome: str = "ok",
) -> int:
    return ledger.emit(
        session,
        type=type,
        actor=actor,
        objects={"data_subject_request": row.id},
        digests={"subject": row.subject_digest},
        outcome=outcome,
        details={"request_type": row.type, "regime": row.regime, **(details or {})},
    )


def unseal_subject(session: Session, *, runtime: Any, row: DataSubjectRequest) -> dict[str, str]:
    """The sealed {subject_id, requester} of a request (only for the subject's own report)."""
    if row.sealed is None:
        raise SubjectIdUnavailableError(f"request {row.id}: its subject id was shredded")
    ref = _seal_ref(row.id)
    try:
        handle = unwrap_data_key(session=session, provider=runtime.key_provider, ref=ref)
    except DataKeyDestroyedError:
        raise SubjectIdUnavailableError(f"request {row.id}: its subject id was shredded") from None
    data: dict[str, str] = json.loads(
        unseal(row.sealed, data_key=handle.key, key_ref=handle.key_id, ref=ref)
    )
    return data


# --- discovery: where is the subject? --------------------------------------------------------


@dataclass
class DatasetHit:
    project_id: str
    project_name: str
    dataset_id: str
    dataset_name: str
    version_id: str
    version_number: int
    digest: str
    rows: int
    declarations: dict[str, Any]
    retention_until: datetime


@dataclass
class ModelHit:
    project_id: str
    model_id: str
    model_name: str
    version_id: str
    number: int
    state: str
    private: bool
    epsilon: float | None
    delta: float | None
    dataset_version_ids: list[str]
    purposes: list[str]


@dataclass
class PredictionHit:
    project_id: str
    prediction_id: str
    model_version_id: str
    model_name: str
    model_version: int
    purpose: str
    label: str
    score_ppm: int
    created_at: datetime
    human_reviewed: bool
    reviews: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Findings:
    subject_digest: str
    datasets: list[DatasetHit]
    models: list[ModelHit]
    predictions: list[PredictionHit]
    recipients: dict[str, list[str]]

    def summary(self) -> dict[str, Any]:
        """Ids and counts only: what the request log keeps."""
        return {
            "dataset_versions": sorted({d.version_id for d in self.datasets}),
            "model_versions": sorted({m.version_id for m in self.models}),
            "predictions": len(self.predictions),
            "projects": sorted(
                {d.project_id for d in self.datasets}
                | {m.project_id for m in self.models}
                | {p.project_id for p in self.predictions}
            ),
        }


def _project_names(session: Session) -> dict[str, str]:
    return {p.id: p.name for p in session.exec(select(Project)).all()}


def discover(session: Session, *, runtime: Any, subject_id: str) -> Findings:
    """Every active dataset version holding the subject's rows (decrypted in memory and
    scanned), the model versions trained on those versions, and the predictions recorded
    about the subject, across every project."""
    pseudonym = subject_pseudonym(runtime, subject_id)
    names = _project_names(session)
    hits: list[DatasetHit] = []
    versions = session.exec(
        select(DatasetVersion)
        .where(DatasetVersion.state == VersionState.active.value)
        .order_by(
            col(DatasetVersion.project_id),
            col(DatasetVersion.dataset_id),
            col(DatasetVersion.number),
        )
    ).all()
    datasets = {d.id: d for d in session.exec(select(Dataset)).all()}
    for version in versions:
        if not (version.declarations or {}).get("subject_id_column"):
            continue
        count = 0
        for _text, _label, subject in iter_version_rows(
            session, provider=runtime.key_provider, store=runtime.blobs, version=version
        ):
            if subject == subject_id:
                count += 1
        if count:
            ds = datasets.get(version.dataset_id)
            hits.append(
                DatasetHit(
                    project_id=version.project_id,
                    project_name=names.get(version.project_id, ""),
                    dataset_id=version.dataset_id,
                    dataset_name=ds.name if ds else "",
                    version_id=version.id,
                    version_number=version.number,
                    digest=version.digest,
                    rows=count,
                    declarations=dict(version.declarations),
                    retention_until=version.retention_until,
                )
            )
    usages = usages_of(session, dataset_version_ids=[h.version_id for h in hits])
    model_ids = sorted({u.used_by_id for u in usages if u.used_by_kind == "model_version"})
    models = _model_hits(session, model_ids)
    predictions = _prediction_hits(session, pseudonym)
    projects = {h.project_id for h in hits} | {p.project_id for p in predictions}
    recipients = {
        pid: list(get_project_settings(session, project_id=pid).recipients)
        for pid in sorted(projects)
    }
    return Findings(pseudonym, hits, models, predictions, recipients)


def _model_hits(session: Session, version_ids: Sequence[str]) -> list[ModelHit]:
    if not version_ids:
        return []
    rows = session.exec(
        select(ModelVersion, Model)
        .join(Model, col(Model.id) == col(ModelVersion.model_id))
        .where(col(ModelVersion.id).in_(list(version_ids)))
        .order_by(col(Model.name), col(ModelVersion.number))
    ).all()
    out = []
    for version, model in rows:
        privacy = version.privacy or {}
        out.append(
            ModelHit(
                project_id=version.project_id,
                model_id=model.id,
                model_name=model.name,
                version_id=version.id,
                number=version.number,
                state=version.state,
                private=version.private,
                epsilon=privacy.get("epsilon"),
                delta=privacy.get("delta"),
                dataset_version_ids=[d["id"] for d in version.dataset_versions],
                purposes=list(version.purposes),
            )
        )
    return out


def _prediction_hits(session: Session, pseudonym: str) -> list[PredictionHit]:
    rows = session.exec(
        select(Prediction)
        .where(Prediction.subject_digest == pseudonym)
        .order_by(col(Prediction.created_at), col(Prediction.id))
    ).all()
    if not rows:
        return []
    model_names = {m.id: m.name for m in session.exec(select(Model)).all()}
    reviews: dict[str, list[dict[str, Any]]] = {}
    for r in session.exec(
        select(PredictionReview)
        .where(col(PredictionReview.prediction_id).in_([p.id for p in rows]))
        .order_by(col(PredictionReview.created_at))
    ).all():
        reviews.setdefault(r.prediction_id, []).append(
            {
                "kind": r.kind,
                "decision": r.decision,
                "label": r.label,
                "at": r.created_at.isoformat(),
            }
        )
    return [
        PredictionHit(
            project_id=p.project_id,
            prediction_id=p.id,
            model_version_id=p.model_version_id,
            model_name=model_names.get(p.model_id, ""),
            model_version=p.version_number,
            purpose=p.purpose,
            label=p.label,
            score_ppm=p.score_ppm,
            created_at=p.created_at,
            human_reviewed=p.human_reviewed,
            reviews=reviews.get(p.id, []),
        )
        for p in rows
    ]


# --- intake ------------------------------------------------------------------------------------


def submit_request(
    session: Session,
    *,
    runtime: Any,
    data: DataSubjectRequestCreate,
    actor: Identity,
    decide: Decide | None = None,
    config: ComplianceSettings | None = None,
) -> DataSubjectRequest:
    """Log, acknowledge and carry out a request in ``session``'s transaction."""
    config = config or get_compliance_settings()
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
    ref = _seal_ref(request_id)
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
    _event(
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
    row.state = RequestState.acknowledged.value
    row.acknowledged_at = utcnow()
    _event(session, row, "dsr.acknowledged", actor=actor.principal_id)
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
            decide=decide,
            config=config,
        )
        row.outcome = (
            f"erased: {row.result['rows_removed']} row(s) from "
            f"{len(row.result['datasets'])} dataset(s); "
            f"{len(row.result['shredded_versions'])} version(s) shredded; "
            f"{len(row.result['flags'])} model version(s) flagged"
        )
    else:
        findings = discover(session, runtime=runtime, subject_id=data.subject_id)
        row.result = {
            "findings": findings.summary(),
            "purposes": list(data.purposes) or ["all"],
            "effect": "the objection is recorded against the subject's pseudonym; "
            "processing for these purposes must stop (see has_objection)",
        }
        row.outcome = f"objection recorded for {', '.join(row.result['purposes'])}"
        _event(
            session,
            row,
            "dsr.objection.recorded",
            actor=actor.principal_id,
            details={"purposes": row.result["purposes"]},
        )
    row.state = RequestState.completed.value
    row.completed_at = utcnow()
    session.add(row)
    _event(
        session,
        row,
        "dsr.completed",
        actor=actor.principal_id,
        details={"on_time": row.completed_at <= row.due_at, "summary": _short(row.result)},
    )
    session.flush()
    return row


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


def has_objection(session: Session, *, subject_digest: str, purpose: str | None = None) -> bool:
    """Whether the subject (by pseudonym) objected to processing for ``purpose`` (or all)."""
    rows = session.exec(
        select(DataSubjectRequest).where(
            DataSubjectRequest.subject_digest == subject_digest,
            DataSubjectRequest.type == RequestType.objection.value,
            DataSubjectRequest.state == RequestState.completed.value,
        )
    ).all()
    return any(not r.purposes or purpose is None or purpose in r.purposes for r in rows)


def objecting_subjects(
    session: Session, *, subject_digests: Iterable[str], purpose: str | None
) -> set[str]:
    """The pseudonyms among ``subject_digests`` whose subject objected to processing for
    ``purpose`` (or for every purpose): one query for a whole predict batch."""
    wanted = sorted(set(subject_digests))
    if not wanted:
        return set()
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        rows = session.exec(
            select(DataSubjectRequest).where(
                col(DataSubjectRequest.subject_digest).in_(wanted[start : start + 500]),
                DataSubjectRequest.type == RequestType.objection.value,
                DataSubjectRequest.state == RequestState.completed.value,
            )
        ).all()
        found |= {
            r.subject_digest
            for r in rows
            if r.subject_digest and (not r.purposes or purpose is None or purpose in r.purposes)
        }
    return found


# --- erasure -----------------------------------------------------------------------------------


def choose_remedy(version: ModelVersion, config: ComplianceSettings) -> tuple[Remedy, str]:
    """The remedy for a model version trained on erased rows, and why."""
    privacy = version.privacy or {}
    raw_eps, raw_delta = privacy.get("epsilon"), privacy.get("delta")
    eps = float(raw_eps) if raw_eps is not None else 0.0
    delta = float(raw_delta) if raw_delta is not None else 0.0
    dp = (
        f"trained with differential privacy (ε = {eps:.4g}, δ = {delta:.3g}, "
        f"{privacy.get('accountant', 'prv')} accountant): any one subject's influence on "
        "the weights is bounded by that guarantee"
        if version.private and raw_eps is not None and raw_delta is not None
        else None
    )
    mode = config.erasure_remedy
    if mode == "retrain":
        return Remedy.retrain, "the erasure policy (erasure_remedy=retrain) retrains every model"
    if dp is None:
        return Remedy.retrain, "not trained with differential privacy: retrain without the subject"
    if mode == "keep_with_dp":
        return Remedy.keep_with_dp, f"kept: {dp} (erasure_remedy=keep_with_dp)"
    if eps <= config.keep_max_epsilon:
        return (
            Remedy.keep_with_dp,
            f"kept: {dp}, within the policy's limit ε ≤ {config.keep_max_epsilon:g} "
            "(erasure_remedy=auto)",
        )
    return (
        Remedy.retrain,
        f"ε = {eps:.4g} is above the policy's limit ε ≤ {config.keep_max_epsilon:g} "
        "for keeping a model (erasure_remedy=auto): retrain without the subject",
    )


def remedy_rule(version: ModelVersion, config: ComplianceSettings, remedy: Remedy) -> str:
    """The rule behind ``choose_remedy``'s choice as a code (the ledger records this; the
    sentence stays on the flag): ``policy_<mode>``, ``not_private``, ``within_limit`` or
    ``above_limit``."""
    privacy = version.privacy or {}
    private = (
        version.private and privacy.get("epsilon") is not None and privacy.get("delta") is not None
    )
    if config.erasure_remedy == "retrain":
        return "policy_retrain"
    if not private:
        return "not_private"
    if config.erasure_remedy == "keep_with_dp":
        return "policy_keep_with_dp"
    return "within_limit" if remedy == Remedy.keep_with_dp else "above_limit"


def _submitter_identity(session: Session, principal_id: str) -> Identity | None:
    from privet.auth import service as auth_service

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
    decide: Decide | None,
) -> tuple[str | None, str]:
    """Submit a job like the version's own on the dataset versions without the subject;
    (job id or None, what happened)."""
    from privet.jobs import budget
    from privet.jobs import service as jobs_service
    from privet.jobs.tables import TrainingJob, TrainingJobCreate

    job = session.get(TrainingJob, version.job_id)
    if job is None:
        return None, "the original training job is unknown: retrain manually"
    target = new_versions.get(job.dataset_version_id)
    if target is None:
        return None, "no dataset version without the subject was written: retrain manually"
    identity = _submitter_identity(session, job.submitted_by_id)
    if identity is None or decide is None:
        return None, "the original submitter is unknown: retrain manually"
    params = dict(job.params)
    params.update(dataset_version_id=target, model_name=job.model_name, purpose=job.purpose)
    data = TrainingJobCreate.model_validate(params)
    admission = jobs_service.prepare_submission(session, project_id=job.project_id, data=data)
    allowed, policies, policy_version = decide(identity, job.project_id, dict(admission.context))
    if not allowed:
        refused = jobs_service.record_refusal(
            session,
            project_id=job.project_id,
            data=data,
            admission=admission,
            actor=identity,
            reason="policy",
            policies=policies,
        )
        return None, f"retraining refused by policy (job {refused}): retrain manually"
    try:
        new_job = jobs_service.submit(
            session,
            project_id=job.project_id,
            data=data,
            admission=admission,
            actor=identity,
            policies=policies,
            policy_version=policy_version,
        )
    except budget.BudgetExceededError:
        refused = jobs_service.record_refusal(
            session,
            project_id=job.project_id,
            data=data,
            admission=admission,
            actor=identity,
            reason="privacy_budget_exceeded",
        )
        return None, f"retraining refused: privacy budget exceeded (job {refused})"
    return new_job.id, f"retraining job {new_job.id} queued on dataset version {target}"


def _erase(
    session: Session,
    *,
    runtime: Any,
    row: DataSubjectRequest,
    subject_id: str,
    actor: Identity,
    decide: Decide | None,
    config: ComplianceSettings,
) -> dict[str, Any]:
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
    new_versions: dict[str, str] = {}
    shredded: list[str] = []
    affected: dict[str, set[str]] = {}
    datasets_touched = []
    rows_removed = 0
    for res in results:
        rows_removed += res.rows_removed
        shredded.extend(res.shredded_versions)
        if res.subjects_found:
            datasets_touched.append(
                {
                    "dataset": res.dataset_id,
                    "rows_removed": res.rows_removed,
                    "new_version": res.new_version.id if res.new_version else None,
                    "shredded_versions": list(res.shredded_versions),
                }
            )
        for old in res.shredded_versions:
            if res.new_version is not None:
                new_versions[old] = res.new_version.id
        for usage in res.affected:
            if usage.used_by_kind == "model_version":
                affected.setdefault(usage.used_by_id, set()).add(usage.dataset_version_id)
    flags = []
    for version_id in sorted(affected):
        version = session.get(ModelVersion, version_id)
        if version is None:
            continue
        remedy, why = choose_remedy(version, config)
        rule = remedy_rule(version, config, remedy)
        job_id = None
        if remedy == Remedy.retrain:
            job_id, what = _retrain(
                session, version=version, new_versions=new_versions, decide=decide
            )
            why = f"{why}; {what}"
        flag = models_service.flag_erasure(
            session,
            version=version,
            source=FlagSource.erasure_request,
            dataset_version_ids=sorted(affected[version_id]),
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
    reasons_shredded = reasons.shred_subject_reasons(session, subject_digest=row.subject_digest)
    return {
        "datasets": datasets_touched,
        "rows_removed": rows_removed,
        "review_reasons_shredded": reasons_shredded,
        "shredded_versions": sorted(set(shredded)),
        "new_versions": sorted(set(new_versions.values())),
        "flags": flags,
        "remedy_policy": config.erasure_remedy,
    }


def flag_after_erasure(
    session: Session,
    *,
    affected: Sequence[AffectedUsage],
    actor: str,
    config: ComplianceSettings | None = None,
) -> list[ModelVersionFlag]:
    """Flag the model versions a steward's ``:erase-subjects`` found among the affected
    (the data-subject request path flags its own, with its request id). Each flag is open
    with the remedy the erasure policy suggests; no retraining is submitted here."""
    config = config or get_compliance_settings()
    by_version: dict[str, set[str]] = {}
    for usage in affected:
        if usage.used_by_kind == "model_version":
            by_version.setdefault(usage.used_by_id, set()).add(usage.dataset_version_id)
    flags = []
    for version_id in sorted(by_version):
        version = session.get(ModelVersion, version_id)
        if version is None:
            continue
        remedy, why = choose_remedy(version, config)
        if remedy == Remedy.retrain:
            why += "; submit a training job on the dataset's current version"
        flags.append(
            models_service.flag_erasure(
                session,
                version=version,
                source=FlagSource.erasure,
                dataset_version_ids=sorted(by_version[version_id]),
                remedy=remedy.value,
                remedy_rule=remedy_rule(version, config, remedy),
                justification=why,
                actor=actor,
            )
        )
    return flags


def resolve_erasure_flags(
    session: Session,
    *,
    version: ModelVersion,
    remedy: str,
    actor: str,
    config: ComplianceSettings | None = None,
) -> list[ModelVersionFlag]:
    """Clear a version's open erasure flags by keeping it under its DP guarantee, if the
    erasure policy allows that for this version (ConflictError saying why not otherwise:
    then the remedy is retraining, and this version is retired rather than approved)."""
    config = config or get_compliance_settings()
    if remedy != Remedy.keep_with_dp.value:
        raise ConflictError(f"unknown remedy {remedy!r}: only keep_with_dp clears a flag")
    open_flags = models_service.erasure_flags(
        session, model_version_id=version.id, state=FlagState.open
    )
    if not open_flags:
        raise ConflictError(f"model version {version.id} has no open erasure flag")
    chosen, why = choose_remedy(version, config)
    if chosen != Remedy.keep_with_dp:
        raise ConflictError(
            f"the erasure policy does not allow keeping model version {version.id}: {why}. "
            "The remedy is to retrain on the dataset's current version and approve that "
            "version; retire this one",
            remedy=chosen.value,
            erasure_remedy=config.erasure_remedy,
        )
    return models_service.resolve_erasure_flags(
        session,
        version=version,
        resolution=Remedy.keep_with_dp.value,
        justification=why,
        actor=actor,
    )


# --- reads -------------------------------------------------------------------------------------


def list_requests(
    session: Session,
    *,
    type: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> Sequence[DataSubjectRequest]:
    query = select(DataSubjectRequest)
    if type:
        query = query.where(DataSubjectRequest.type == type)
    if state:
        query = query.where(DataSubjectRequest.state == state)
    if since:
        query = query.where(col(DataSubjectRequest.received_at) >= since)
    if until:
        query = query.where(col(DataSubjectRequest.received_at) < until)
    return session.exec(
        query.order_by(
            col(DataSubjectRequest.received_at).desc(), col(DataSubjectRequest.id)
        ).limit(limit)
    ).all()


def get_request(session: Session, *, request_id: str) -> DataSubjectRequest:
    row = session.get(DataSubjectRequest, request_id)
    if row is None:
        raise NotFoundError(f"data-subject request {request_id!r} does not exist")
    return row


def flags_for(session: Session, *, model_version_id: str) -> Sequence[ModelVersionFlag]:
    return session.exec(
        select(ModelVersionFlag)
        .where(ModelVersionFlag.model_version_id == model_version_id)
        .order_by(col(ModelVersionFlag.created_at))
    ).all()


def sweep_request_log(
    session: Session, *, now: datetime | None = None, actor: str = SYSTEM_ACTOR
) -> list[str]:
    """Shred the sealed subject id of every request past its log retention; the entry
    itself (dates, type, outcome, pseudonym) stays."""
    due = session.exec(
        select(DataSubjectRequest).where(
            col(DataSubjectRequest.retain_until) <= (now or utcnow()),
            col(DataSubjectRequest.sealed).is_not(None),
        )
    ).all()
    for row in due:
        shred(session=session, ref=_seal_ref(row.id))
        row.sealed = None
        session.add(row)
        _event(session, row, "dsr.subject_shredded", actor=None, details={"reason": "retention"})
    return [r.id for r in due]


# --- project settings for the RoPA ---------------------------------------------------------


def get_project_settings(session: Session, *, project_id: str) -> ProjectCompliancePublic:
    row = session.get(ProjectComplianceSettings, project_id)
    if row is None:
        return ProjectCompliancePublic(project_id=project_id)
    return ProjectCompliancePublic.model_validate(row.model_dump())


def put_project_settings(
    session: Session, *, project_id: str, data: ProjectComplianceUpdate, actor: str
) -> ProjectCompliancePublic:
    row = session.get(ProjectComplianceSettings, project_id)
    values = data.model_dump()
    if row is None:
        row = ProjectComplianceSettings(
            project_id=project_id, updated_at=utcnow(), updated_by=actor, **values
        )
    else:
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        row.updated_by = actor
    session.add(row)
    ledger.emit(
        session,
        type="project.compliance_updated",
        actor=actor,
        project=project_id,
        objects={"project": project_id},
        details={"fields": sorted(k for k, v in values.items() if v)},
    )
    session.flush()
    return ProjectCompliancePublic.model_validate(row.model_dump())
