"""Report builders: one function per kind, each reading the registry through the domain
services and citing the ledger events it relies on.

Call them with a read session (``privet.db.read_session``) after ``integrate_now``, so the
data and the checkpoint are one consistent snapshot. Reports hold ids, digests,
declarations and counts: never a row's text, and a subject id only in the subject's own
access report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from privet.auth.tables import Project
from privet.compliance import discovery
from privet.compliance import service as compliance
from privet.compliance.settings import get_compliance_settings
from privet.compliance.tables import DataSubjectRequest, RequestType
from privet.datasets import catalog as datasets_catalog
from privet.datasets.tables import Dataset, DatasetVersion
from privet.inference.tables import Prediction
from privet.jobs.tables import PrivacyBudget, PrivacyBudgetEntry, TrainingJob
from privet.kit.errors import InvalidInputError, NotFoundError
from privet.kit.ids import utcnow
from privet.models.tables import Model, ModelVersion
from privet.reports import charts
from privet.reports.evidence import Evidence, refs
from privet.reports.model import Chart, Report, Table

KINDS = ("ropa", "model-lineage", "privacy-budget", "access-log", "dsr-log", "monitoring")


def _new(kind: str, title: str, *, actor: str, params: dict[str, Any]) -> Report:
    return Report(
        kind=kind,
        title=title,
        generated_at=utcnow(),
        generated_by=actor,
        parameters={k: v for k, v in params.items() if v is not None},
    )


def _projects(session: Session, project_id: str | None) -> list[Project]:
    if project_id is not None:
        project = session.get(Project, project_id)
        if project is None:
            raise NotFoundError(f"project {project_id!r} does not exist")
        return [project]
    return list(session.exec(select(Project).order_by(col(Project.name))).all())


# --- ropa ----------------------------------------------------------------------------------


def security_measures(runtime: Any) -> list[dict[str, Any]]:
    """Art. 32 measures as the live configuration has them."""
    from privet.crypto.settings import CryptoSettings
    from privet.datasets.tables import DEFAULT_EPSILON_TOTAL
    from privet.ledger.settings import get_ledger_settings

    crypto = CryptoSettings()
    provider = (
        "hardware security module (PKCS#11)"
        if crypto.key_provider == "pkcs11"
        else "local master key file (0600)"
    )
    ledger_settings = get_ledger_settings()
    return [
        {
            "measure": "Encryption at rest",
            "detail": "AES-256-GCM, one data key per dataset "
            f"version, model version and export, wrapped by a master key held in a {provider}; "
            "erasure destroys the data key (crypto-shredding).",
        },
        {
            "measure": "Differential privacy",
            "detail": "models trained on personal data use "
            f"DP-SGD; each dataset has a privacy budget shared by all its versions "
            f"(default ε = {DEFAULT_EPSILON_TOTAL:g}) charged before training starts.",
        },
        {
            "measure": "Access control",
            "detail": "every request is decided by Cedar policies "
            f"(policy version {runtime.authorizer.engine.version}); deny by default; every "
            "decision is logged.",
        },
        {
            "measure": "Audit log",
            "detail": "append-only, tamper-evident (RFC 6962 Merkle "
            f"tree), Ed25519-signed checkpoints at least every {ledger_settings.checkpoint_every} "
            "events; verifiable offline.",
        },
        {
            "measure": "Pseudonymisation",
            "detail": "subject ids and prediction inputs appear in "
            "logs only as keyed HMAC-SHA256 digests.",
        },
    ]


def build_ropa(
    session: Session, runtime: Any, *, actor: str, project_id: str | None = None
) -> Report:
    ev = Evidence(session)
    report = _new(
        "ropa",
        "Record of processing activities (GDPR Art. 30)",
        actor=actor,
        params={"project": project_id},
    )
    controllers = Table(
        "controllers",
        "Controllers and data protection officers",
        [
            ("project", "Project"),
            ("controller", "Controller"),
            ("controller_contact", "Controller contact"),
            ("dpo_contact", "DPO contact"),
            ("subject_categories", "Categories of data subjects"),
            ("recipients", "Recipients"),
            ("transfers", "Transfers to third countries"),
            ("evidence", "Log events"),
        ],
    )
    activities = Table(
        "activities",
        "Processing activities (one per dataset)",
        [
            ("project", "Project"),
            ("dataset", "Dataset"),
            ("dataset_id", "Dataset id"),
            ("purposes", "Purposes"),
            ("legal_basis", "Legal basis (Art. 6)"),
            ("personal_data", "Personal data"),
            ("data_categories", "Categories of data"),
            ("subject_categories", "Categories of data subjects"),
            ("recipients", "Recipients"),
            ("retention_days", "Retention (days)"),
            ("active_versions", "Versions held"),
            ("rows", "Records held"),
            ("epsilon_total", "Privacy budget ε"),
            ("evidence", "Log events"),
        ],
        intro="Each dataset registered on the platform is one processing activity: "
        "training classification models for the declared purposes, and serving them.",
    )
    models = Table(
        "models",
        "Models serving these purposes",
        [
            ("project", "Project"),
            ("model", "Model"),
            ("version", "Version"),
            ("state", "State"),
            ("purposes", "Purposes"),
            ("private", "Trained with DP"),
            ("epsilon", "ε"),
        ],
    )
    for project in _projects(session, project_id):
        cfg = compliance.get_project_settings(session, project_id=project.id)
        subjects = cfg.subject_categories or ["not declared"]
        recipients = cfg.recipients or ["none beyond the controller"]
        pev = ev.events(object_id=project.id, types=("project.",), limit=50)
        controllers.rows.append(
            {
                "project": project.name,
                "controller": cfg.controller or "not declared",
                "controller_contact": cfg.controller_contact or "not declared",
                "dpo_contact": cfg.dpo_contact or "not declared",
                "subject_categories": subjects,
                "recipients": recipients,
                "transfers": cfg.transfers or "none",
                "evidence": refs(pev),
            }
        )
        for ds in datasets_catalog.list_datasets(session, project_id=project.id):
            versions = [
                v
                for v in datasets_catalog.list_versions(session, dataset_id=ds.id)
                if v.state == "active"
            ]
            if not versions:
                continue
            latest = max(versions, key=lambda v: v.number)
            d = latest.declarations
            dev = ev.events(
                object_id=ds.id, types=("dataset.created", "dataset.version.created"), limit=50
            )
            activities.rows.append(
                {
                    "project": project.name,
                    "dataset": ds.name,
                    "dataset_id": ds.id,
                    "purposes": d.get("purposes", []),
                    "legal_basis": d.get("legal_basis"),
                    "personal_data": bool(d.get("contains_personal_data")),
                    "data_categories": d.get("data_categories", []),
                    "subject_categories": subjects,
                    "recipients": recipients,
                    "retention_days": d.get("retention_days"),
                    "active_versions": len(versions),
                    "rows": latest.row_count,
                    "epsilon_total": latest.epsilon_total,
                    "evidence": refs(dev),
                }
            )
        for model in session.exec(select(Model).where(Model.project_id == project.id)).all():
            for v in session.exec(
                select(ModelVersion)
                .where(ModelVersion.model_id == model.id)
                .order_by(col(ModelVersion.number))
            ).all():
                models.rows.append(
                    {
                        "project": project.name,
                        "model": model.name,
                        "version": v.number,
                        "state": v.state,
                        "purposes": v.purposes,
                        "private": v.private,
                        "epsilon": (v.privacy or {}).get("epsilon"),
                    }
                )
    measures = Table(
        "security",
        "Technical and organisational security measures (Art. 32)",
        [("measure", "Measure"), ("detail", "In force")],
        rows=security_measures(runtime),
    )
    report.tables = [controllers, activities, models, measures]
    report.facts = [
        ("Projects", len(controllers.rows)),
        ("Processing activities", len(activities.rows)),
        ("Model versions", len(models.rows)),
    ]
    report.data = {"security_policy_version": runtime.authorizer.engine.version}
    report.ledger = ev.to_json()
    return report


# --- model lineage ------------------------------------------------------------------------


def build_model_lineage(
    session: Session, runtime: Any, *, actor: str, model_version_id: str
) -> Report:
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise NotFoundError(f"model version {model_version_id!r} does not exist")
    model = session.get(Model, version.model_id)
    ev = Evidence(session)
    name = model.name if model else version.model_id
    report = _new(
        "model-lineage",
        f"Model lineage: {name} v{version.number}",
        actor=actor,
        params={"model_version": version.id, "project": version.project_id},
    )
    vev = ev.events(object_id=version.id, types=("model_version.",), limit=200)
    jev = ev.events(object_id=version.job_id, types=("training_job.", "privacy_budget."), limit=200)
    privacy = version.privacy or {}
    flags = compliance.flags_for(session, model_version_id=version.id)
    served = session.exec(
        select(Prediction.purpose, Prediction.label, func.count())
        .where(Prediction.model_version_id == version.id)
        .group_by(Prediction.purpose, Prediction.label)
    ).all()
    served_total = sum(int(n) for _p, _l, n in served)
    report.facts = [
        ("Model", name),
        ("Version", version.number),
        ("Version id", version.id),
        ("Project", version.project_id),
        ("State", version.state),
        ("Base model", f"{version.base_model} (sha256 {version.base_model_sha256[:16]}…)"),
        ("Weights sha256", version.weights_sha256),
        ("Trained with differential privacy", version.private),
        ("ε (epsilon)", privacy.get("epsilon")),
        ("δ (delta)", privacy.get("delta")),
        ("Policy version at training", version.lineage.get("policy_version")),
        ("Code version", version.lineage.get("code_version")),
        ("Predictions served", served_total),
        ("Affected by erasure requests", len(flags) > 0),
    ]
    data_rows = []
    for ref in version.dataset_versions:
        dv = session.get(DatasetVersion, ref["id"])
        ds = session.get(Dataset, dv.dataset_id) if dv else None
        d = dv.declarations if dv else {}
        dvev = ev.events(
            object_id=ref["id"], types=("dataset.version.", "dataset.subjects."), limit=50
        )
        data_rows.append(
            {
                "dataset": ds.name if ds else ref.get("dataset_id"),
                "version_id": ref["id"],
                "number": dv.number if dv else None,
                "digest": ref.get("digest") or (dv and dv.digest),
                "rows": dv.row_count if dv else ref.get("rows"),
                "purposes": d.get("purposes"),
                "legal_basis": d.get("legal_basis"),
                "data_categories": d.get("data_categories"),
                "retention_days": d.get("retention_days"),
                "state": dv.state if dv else "unknown",
                "shredded": f"{dv.shred_reason} at {dv.shredded_at:%Y-%m-%d %H:%M}"
                if dv and dv.shredded_at
                else "",
                "evidence": refs(dvev),
            }
        )
    job = session.get(TrainingJob, version.job_id)
    job_rows = [
        {"parameter": k, "value": v} for k, v in sorted((job.params if job else {}).items())
    ]
    if job:
        job_rows[:0] = [
            {"parameter": "job id", "value": job.id},
            {"parameter": "submitted by", "value": job.submitted_by},
            {"parameter": "state", "value": job.state},
            {"parameter": "started", "value": job.started_at},
            {"parameter": "finished", "value": job.finished_at},
        ]
    dp_rows = [{"parameter": k, "value": v} for k, v in sorted(privacy.items())]
    gov_rows = [
        {
            "event": e.event["type"],
            "time": e.event["time"],
            "actor": e.event["actor"],
            "detail": e.event["details"].get("from_state") or "",
            "evidence": f"#{e.index}",
        }
        for e in vev + jev
    ]
    erase_rows = [
        {
            "request": f.request_id,
            "dataset_versions": f.dataset_version_ids,
            "remedy": f.remedy,
            "justification": f.justification,
            "retrain_job": f.retrain_job_id or "",
            "at": f.created_at,
        }
        for f in flags
    ]
    report.tables = [
        Table(
            "training_data",
            "Training data (dataset versions)",
            [
                ("dataset", "Dataset"),
                ("version_id", "Version id"),
                ("number", "No."),
                ("digest", "Content digest"),
                ("rows", "Rows"),
                ("purposes", "Purposes"),
                ("legal_basis", "Legal basis"),
                ("data_categories", "Categories"),
                ("retention_days", "Retention (days)"),
                ("state", "State now"),
                ("shredded", "Shredded"),
                ("evidence", "Log events"),
            ],
            data_rows,
        ),
        Table(
            "training_job",
            "Training job",
            [("parameter", "Parameter"), ("value", "Value")],
            job_rows,
        ),
        Table(
            "privacy",
            "Privacy guarantee",
            [("parameter", "Parameter"), ("value", "Value")],
            dp_rows,
            empty="Not trained with differential privacy.",
        ),
        Table(
            "history",
            "Registration, approvals and budget",
            [
                ("event", "Event"),
                ("time", "Time"),
                ("actor", "By"),
                ("detail", "Detail"),
                ("evidence", "Log event"),
            ],
            gov_rows,
        ),
        Table(
            "erasures",
            "Erasure requests that affected this version",
            [
                ("request", "Request"),
                ("dataset_versions", "Erased dataset versions"),
                ("remedy", "Remedy"),
                ("justification", "Why"),
                ("retrain_job", "Retraining job"),
                ("at", "Flagged at"),
            ],
            erase_rows,
            empty="No erasure request has affected this model version.",
        ),
        Table(
            "predictions",
            "Predictions served",
            [("purpose", "Purpose"), ("label", "Outcome"), ("count", "Count")],
            [{"purpose": p, "label": lab, "count": int(n)} for p, lab, n in sorted(served)],
        ),
    ]
    from privet.monitoring.report import lineage_review_table  # monitoring builds on reports

    report.tables.append(lineage_review_table(session, version.id))
    if flags:
        ev.events(object_id=version.id, types=("model_version.erasure_flagged",), limit=50)
        report.notes.append(
            "This model version was trained on records that were later erased at a data "
            "subject's request. "
            + " ".join(f"Remedy: {f.remedy.replace('_', ' ')} — {f.justification}." for f in flags)
        )
    if served:
        labels = sorted({f"{p} / {lab}" for p, lab, _n in served})
        counts = {f"{p} / {lab}": int(n) for p, lab, n in served}
        report.charts.append(
            Chart(
                "Predictions by purpose and outcome",
                charts.bar_chart(
                    "Predictions by purpose and outcome",
                    labels,
                    [("predictions", [counts[x] for x in labels])],
                ),
            )
        )
    report.data = {
        "model_version_id": version.id,
        "flagged": bool(flags),
        "remedies": [f.remedy for f in flags],
    }
    report.ledger = ev.to_json()
    return report


# --- privacy budget --------------------------------------------------------------------------


def build_privacy_budget(
    session: Session,
    runtime: Any,
    *,
    actor: str,
    project_id: str | None = None,
    dataset_version_id: str | None = None,
) -> Report:
    """One budget per dataset, shared by all its versions (uploads and the versions
    erasure derives): ε spent on any version counts against every one."""
    ev = Evidence(session)
    report = _new(
        "privacy-budget",
        "Privacy budget (ε) per dataset, shared by all its versions",
        actor=actor,
        params={"project": project_id, "dataset_version": dataset_version_id},
    )
    query = select(PrivacyBudget)
    if project_id:
        query = query.where(PrivacyBudget.project_id == project_id)
    if dataset_version_id:
        asked = session.get(DatasetVersion, dataset_version_id)
        query = query.where(PrivacyBudget.dataset_id == (asked.dataset_id if asked else ""))
    budgets = session.exec(query.order_by(col(PrivacyBudget.dataset_id))).all()
    names = {d.id: d.name for d in session.exec(select(Dataset)).all()}
    totals: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    series: list[tuple[str, list[tuple[datetime, float]], float | None]] = []
    for b in budgets:
        versions = {
            v.id: v
            for v in session.exec(
                select(DatasetVersion)
                .where(DatasetVersion.dataset_id == b.dataset_id)
                .order_by(col(DatasetVersion.number))
            ).all()
        }
        label = names.get(b.dataset_id, b.dataset_id)
        entries = session.exec(
            select(PrivacyBudgetEntry)
            .where(PrivacyBudgetEntry.dataset_id == b.dataset_id)
            .order_by(col(PrivacyBudgetEntry.created_at), col(PrivacyBudgetEntry.id))
        ).all()
        index = ev.indexes_of_entries(e.ledger_entry_id for e in entries if e.ledger_entry_id)
        charged_jobs = [e.job_id for e in entries if e.kind == "charge"]
        deltas = (
            session.exec(
                select(TrainingJob.delta).where(col(TrainingJob.id).in_(charged_jobs))
            ).all()
            if charged_jobs
            else []
        )
        spent = 0.0
        points: list[tuple[datetime, float]] = []
        for e in entries:
            if e.kind == "charge":
                spent += e.epsilon
                points.append((e.created_at, spent))
            dv = versions.get(e.dataset_version_id)
            history.append(
                {
                    "dataset": label,
                    "dataset_version": f"v{dv.number}" if dv else e.dataset_version_id,
                    "dataset_version_id": e.dataset_version_id,
                    "time": e.created_at,
                    "job": e.job_id,
                    "kind": e.kind,
                    "epsilon": e.epsilon,
                    "spent_after": round(spent, 6),
                    "evidence": f"#{index[e.ledger_entry_id]}"
                    if e.ledger_entry_id in index
                    else "",
                }
            )
        totals.append(
            {
                "dataset": label,
                "dataset_id": b.dataset_id,
                "versions": ", ".join(
                    f"v{v.number}" + ("" if v.state == "active" else f" ({v.state})")
                    for v in versions.values()
                ),
                "project": b.project_id,
                "epsilon_total": b.epsilon_total,
                "delta": b.delta,
                "epsilon_charged": b.epsilon_charged,
                "epsilon_reserved": b.epsilon_reserved,
                "epsilon_remaining": b.epsilon_remaining,
                "delta_charged": float(sum(d for d in deltas if d is not None)),
            }
        )
        series.append((label, points, b.epsilon_total))
    report.tables = [
        Table(
            "budgets",
            "Budget per dataset (dataset-wide: shared by every version)",
            [
                ("dataset", "Dataset"),
                ("dataset_id", "Id"),
                ("versions", "Versions"),
                ("project", "Project"),
                ("epsilon_total", "ε total"),
                ("delta", "δ per job"),
                ("epsilon_charged", "ε spent"),
                ("epsilon_reserved", "ε reserved"),
                ("epsilon_remaining", "ε remaining"),
                ("delta_charged", "δ spent (sum)"),
            ],
            totals,
            intro="A dataset's budget is shared by all its versions (new uploads and the "
            "versions an erasure derives): the people in a later version were in the earlier "
            "ones, so ε spent on any version counts against all (sequential composition: ε "
            "and δ add up). The total is the smallest any version declared.",
            empty="No dataset has been used for training yet.",
        ),
        Table(
            "history",
            "Spending over time, by job",
            [
                ("dataset", "Dataset"),
                ("dataset_version", "Version"),
                ("time", "Time"),
                ("job", "Job"),
                ("kind", "Entry"),
                ("epsilon", "ε"),
                ("spent_after", "ε spent after (dataset)"),
                ("evidence", "Log event"),
            ],
            history,
            intro="reserve: ε held for a queued job; charge: the job started and the ε is "
            "spent for good; release: a queued job was cancelled and its ε returned.",
        ),
    ]
    report.facts = [
        ("Datasets", len(totals)),
        ("Total ε spent", round(sum(t["epsilon_charged"] for t in totals), 6)),
        ("Training jobs", len({h["job"] for h in history})),
    ]
    report.charts.append(
        Chart(
            "ε spent over time",
            charts.step_chart("ε spent over time", series, y_label="ε spent"),
            caption="Solid: cumulative ε charged on any version; dashed: the dataset's total.",
        )
    )
    report.ledger = ev.to_json()
    return report


# --- access log ----------------------------------------------------------------------------


def build_access_log(
    session: Session,
    runtime: Any,
    *,
    actor: str,
    since: datetime | None = None,
    until: datetime | None = None,
    principal: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    project_id: str | None = None,
    max_rows: int = 5000,
) -> Report:
    if outcome not in (None, "allow", "deny"):
        raise InvalidInputError("outcome must be allow or deny")
    ev = Evidence(session)
    report = _new(
        "access-log",
        "Access decisions",
        actor=actor,
        params={
            "since": since,
            "until": until,
            "principal": principal,
            "action": action,
            "outcome": outcome,
            "project": project_id,
        },
    )
    found = ev.events(
        type="auth.decision",
        actor=principal,
        project=project_id,
        since=since,
        until=until,
        limit=max_rows * 20,
        cite=False,
    )
    rows: list[dict[str, Any]] = []
    per_action: dict[str, Counter[str]] = {}
    truncated = False
    for item in found:
        e = item.event
        act = e["details"].get("action", "")
        if action and act != action:
            continue
        if outcome and e["outcome"] != outcome:
            continue
        if len(rows) >= max_rows:
            truncated = True
            break
        ev.cite_index(item.index)
        per_action.setdefault(act, Counter())[e["outcome"]] += 1
        rows.append(
            {
                "index": f"#{item.index}",
                "time": e["time"],
                "principal": e["actor"],
                "project": e["project"] or "",
                "action": act,
                "outcome": e["outcome"],
                "resource": ", ".join(f"{k}={v}" for k, v in e["objects"].items()),
                "policies": e["details"].get("policies", []),
            }
        )
    actions = sorted(per_action)
    report.tables = [
        Table(
            "decisions",
            "Decisions",
            [
                ("index", "Log event"),
                ("time", "Time"),
                ("principal", "Principal"),
                ("project", "Project"),
                ("action", "Action"),
                ("outcome", "Outcome"),
                ("resource", "Resource"),
                ("policies", "Deciding policies"),
            ],
            rows,
        )
    ]
    report.facts = [
        ("Decisions", len(rows)),
        ("Allowed", sum(c["allow"] for c in per_action.values())),
        ("Denied", sum(c["deny"] for c in per_action.values())),
        ("Principals", len({r["principal"] for r in rows})),
    ]
    if truncated:
        report.notes.append(
            f"Only the first {max_rows} matching decisions are listed: narrow "
            "the period or the filters for the rest."
        )
    report.charts.append(
        Chart(
            "Decisions per action",
            charts.bar_chart(
                "Decisions per action",
                actions,
                [
                    ("allow", [per_action[a]["allow"] for a in actions]),
                    ("deny", [per_action[a]["deny"] for a in actions]),
                ],
            ),
        )
    )
    report.ledger = ev.to_json()
    return report


# --- dsr log -------------------------------------------------------------------------------


DSR_COLUMNS = [
    ("id", "Request"),
    ("type", "Type"),
    ("regime", "Regime"),
    ("channel", "Received via"),
    ("received_at", "Received"),
    ("acknowledge_due", "Acknowledge by"),
    ("acknowledged_at", "Acknowledged"),
    ("due_at", "Respond by"),
    ("completed_at", "Answered"),
    ("state", "State"),
    ("on_time", "On time"),
    ("outcome", "Outcome"),
    ("evidence", "Log events"),
]


def build_dsr_log(
    session: Session,
    runtime: Any,
    *,
    actor: str,
    since: datetime | None = None,
    until: datetime | None = None,
    type: str | None = None,
) -> Report:
    ev = Evidence(session)
    report = _new(
        "dsr-log",
        "Data-subject request log",
        actor=actor,
        params={"since": since, "until": until, "type": type},
    )
    rows = []
    by_type: dict[str, Counter[str]] = {}
    for r in reversed(
        compliance.list_requests(session, type=type, since=since, until=until, limit=100_000)
    ):
        p = compliance.public(r)
        events = ev.events(object_id=r.id, types=("dsr.",), limit=20)
        status = "open" if p.on_time is None else ("on time" if p.on_time else "late")
        by_type.setdefault(r.type, Counter())[status] += 1
        rows.append(
            {
                **{k: getattr(p, k) for k, _l in DSR_COLUMNS if hasattr(p, k)},
                "evidence": refs(events),
            }
        )
    report.tables = [
        Table("requests", "Requests", DSR_COLUMNS, rows, empty="No request in this period.")
    ]
    report.facts = [
        ("Requests", len(rows)),
        ("Answered on time", sum(c["on time"] for c in by_type.values())),
        ("Answered late", sum(c["late"] for c in by_type.values())),
        ("Open", sum(c["open"] for c in by_type.values())),
        ("Kept for", f"{get_compliance_settings().request_log_days} days"),
    ]
    types = sorted(by_type)
    report.charts.append(
        Chart(
            "Requests by type",
            charts.bar_chart(
                "Requests by type",
                types,
                [(s, [by_type[t][s] for t in types]) for s in ("on time", "late", "open")],
            ),
        )
    )
    report.ledger = ev.to_json()
    return report


# --- a data-subject request's own report ------------------------------------------------------


def build_request_report(
    session: Session, runtime: Any, *, actor: str, request: DataSubjectRequest
) -> Report:
    """The answer to one request: for access, what the platform holds about the subject;
    for erasure and objection, what was done.

    The subject's own id appears only in the copy fetched by the principal who took the
    request (who answers the subject); anyone else allowed to read the request (an
    auditor) gets it withheld."""
    ev = Evidence(session)
    p = compliance.public(request)
    titles = {
        "access": "Your personal data (GDPR Art. 15 access request)",
        "erasure": "Erasure request (GDPR Art. 17): what was erased",
        "objection": "Objection to processing (GDPR Art. 21)",
    }
    report = _new(
        "dsr",
        titles.get(request.type, "Data-subject request"),
        actor=actor,
        params={"request": request.id},
    )
    rev = ev.events(object_id=request.id, limit=200)
    report.data = {"request_type": request.type, "request_id": request.id}
    report.facts = [
        ("Request", request.id),
        ("Type", request.type),
        ("Regime", request.regime.upper()),
        ("Received", request.received_at),
        ("Respond by", request.due_at),
        ("Answered", request.completed_at),
        ("State", request.state),
        ("On time", p.on_time),
        ("Outcome", request.outcome),
    ]
    report.tables.append(
        Table(
            "request_events",
            "Handling of the request",
            [("event", "Step"), ("time", "Time"), ("evidence", "Log event")],
            [
                {"event": _step(e.event), "time": e.event["time"], "evidence": f"#{e.index}"}
                for e in rev
            ],
        )
    )
    if request.type == RequestType.access.value:
        sealed = compliance.unseal_subject(session, runtime=runtime, row=request)
        findings = discovery.discover(session, runtime=runtime, subject_id=sealed["subject_id"])
        shown = (
            sealed["subject_id"]
            if actor == request.submitted_by
            else "withheld (shown only to the principal who took the request)"
        )
        report.facts.insert(1, ("Subject id", shown))
        _access_tables(report, ev, findings)
        recorded = (request.result or {}).get("findings")
        if recorded is not None and recorded != findings.summary():
            report.notes.insert(
                0,
                "This report shows what the platform holds now "
                f"({report.generated_at:%Y-%m-%d %H:%M} UTC). When the request was answered, "
                "it held "
                f"{len(recorded.get('dataset_versions', []))} dataset version(s), "
                f"{len(recorded.get('model_versions', []))} model version(s) and "
                f"{recorded.get('predictions', 0)} prediction(s) about you; what was erased "
                "since then is no longer listed.",
            )
    elif request.type == RequestType.erasure.value:
        res = request.result
        for d in res.get("datasets", []):
            ev.events(
                object_id=d["dataset"],
                types=("dataset.subjects.erased", "dataset.version.shredded"),
                limit=50,
            )
        report.tables.append(
            Table(
                "erased",
                "Datasets the records were erased from",
                [
                    ("dataset", "Dataset"),
                    ("rows_removed", "Records removed"),
                    ("new_version", "New version (without the records)"),
                    ("shredded_versions", "Versions destroyed"),
                ],
                res.get("datasets", []),
            )
        )
        report.tables.append(
            Table(
                "models",
                "Models trained on the erased records",
                [
                    ("model_version", "Model version"),
                    ("project", "Project"),
                    ("remedy", "Remedy"),
                    ("justification", "Why"),
                    ("retrain_job", "Retraining job"),
                ],
                res.get("flags", []),
                empty="No model was trained on the erased records.",
            )
        )
        report.notes.append(
            f"Remedy policy in force: {res.get('remedy_policy')}. Destroyed versions cannot "
            "be decrypted any more, including from backups: their keys were destroyed."
        )
    else:
        report.tables.append(
            Table(
                "objection",
                "Purposes objected to",
                [("purpose", "Purpose")],
                [{"purpose": x} for x in request.result.get("purposes", [])],
            )
        )
    report.ledger = ev.to_json()
    return report


_STEPS = {
    "dsr.received": "Request received and logged",
    "dsr.acknowledged": "Receipt acknowledged",
    "dsr.completed": "Request answered",
    "dsr.objection.recorded": "Objection recorded",
    "dsr.subject_shredded": "Subject id destroyed (end of log retention)",
    "model_version.erasure_flagged": "Model version flagged (trained on erased records)",
}


def _step(event: dict[str, Any]) -> str:
    if event["type"] == "auth.decision":
        verdict = "allowed" if event["outcome"] == "allow" else "denied"
        return f"{event['details'].get('action')} {verdict} for {event['actor']}"
    return _STEPS.get(event["type"], str(event["type"]))


def _access_tables(report: Report, ev: Evidence, f: discovery.Findings) -> None:
    data_rows = []
    for h in f.datasets:
        dev = ev.events(object_id=h.version_id, types=("dataset.version.created",), limit=5)
        d = h.declarations
        data_rows.append(
            {
                "project": h.project_name,
                "dataset": h.dataset_name,
                "version": h.version_number,
                "version_id": h.version_id,
                "records": h.rows,
                "data_categories": d.get("data_categories"),
                "purposes": d.get("purposes"),
                "legal_basis": d.get("legal_basis"),
                "retention_until": h.retention_until,
                "evidence": refs(dev),
            }
        )
    model_rows = []
    for m in f.models:
        mev = ev.events(object_id=m.version_id, types=("model_version.registered",), limit=5)
        model_rows.append(
            {
                "model": m.model_name,
                "version": m.number,
                "version_id": m.version_id,
                "state": m.state,
                "private": m.private,
                "epsilon": m.epsilon,
                "delta": m.delta,
                "purposes": m.purposes,
                "evidence": refs(mev),
            }
        )
    pred_rows = []
    for pr in f.predictions:
        pev = ev.events(object_id=pr.prediction_id, types=("prediction.",), limit=10)
        pred_rows.append(
            {
                "prediction": pr.prediction_id,
                "time": pr.created_at,
                "model": pr.model_name,
                "version": pr.model_version,
                "model_version_id": pr.model_version_id,
                "purpose": pr.purpose,
                "outcome": pr.label,
                "confidence": f"{pr.score_ppm / 10_000:.1f}%",
                "human_reviewed": pr.human_reviewed,
                "reviews": [f"{r['kind']}: {r['decision']}" for r in pr.reviews],
                "evidence": refs(pev),
            }
        )
    recipients = [
        {"project": pid, "recipients": r or ["none beyond the controller"]}
        for pid, r in f.recipients.items()
    ]
    report.tables += [
        Table(
            "datasets",
            "Datasets that hold records about you",
            [
                ("project", "Project"),
                ("dataset", "Dataset"),
                ("version", "Version"),
                ("version_id", "Version id"),
                ("records", "Records"),
                ("data_categories", "Categories of data"),
                ("purposes", "Purposes"),
                ("legal_basis", "Legal basis"),
                ("retention_until", "Kept until"),
                ("evidence", "Log events"),
            ],
            data_rows,
            empty="No dataset holds records about you.",
        ),
        Table(
            "models",
            "Models trained on those records",
            [
                ("model", "Model"),
                ("version", "Version"),
                ("version_id", "Version id"),
                ("state", "State"),
                ("private", "Differential privacy"),
                ("epsilon", "ε"),
                ("delta", "δ"),
                ("purposes", "Purposes"),
                ("evidence", "Log events"),
            ],
            model_rows,
            empty="No model was trained on records about you.",
        ),
        Table(
            "predictions",
            "Automated decisions about you",
            [
                ("prediction", "Decision id"),
                ("time", "Time"),
                ("model", "Model"),
                ("version", "Version"),
                ("model_version_id", "Model version id"),
                ("purpose", "Purpose"),
                ("outcome", "Outcome"),
                ("confidence", "Confidence"),
                ("human_reviewed", "Reviewed by a person"),
                ("reviews", "Reviews"),
                ("evidence", "Log events"),
            ],
            pred_rows,
            empty="No automated decision was recorded about you.",
        ),
        Table(
            "recipients",
            "Recipients",
            [("project", "Project"), ("recipients", "Recipients")],
            recipients,
        ),
    ]
    report.facts += [
        ("Dataset versions holding your records", len(data_rows)),
        ("Models trained on them", len(model_rows)),
        ("Automated decisions about you", len(pred_rows)),
    ]
    report.notes.append(
        "You may ask for these records to be corrected or erased, object to their "
        "processing, and ask for a person to review any automated decision listed here."
    )
    report.data.update(
        {
            "dataset_versions": [h.version_id for h in f.datasets],
            "model_versions": [m.version_id for m in f.models],
            "predictions": [p.prediction_id for p in f.predictions],
        }
    )


def build(
    kind: str, session: Session, runtime: Any, *, actor: str, params: dict[str, Any]
) -> Report:
    """Dispatch on ``kind`` with the route's parameters (unused ones ignored)."""
    if kind == "ropa":
        return build_ropa(session, runtime, actor=actor, project_id=params.get("project"))
    if kind == "model-lineage":
        mv = params.get("model_version")
        if not mv:
            raise InvalidInputError("model-lineage needs model_version=<id>", field="model_version")
        return build_model_lineage(session, runtime, actor=actor, model_version_id=mv)
    if kind == "privacy-budget":
        return build_privacy_budget(
            session,
            runtime,
            actor=actor,
            project_id=params.get("project"),
            dataset_version_id=params.get("dataset_version"),
        )
    if kind == "access-log":
        return build_access_log(
            session,
            runtime,
            actor=actor,
            since=params.get("since"),
            until=params.get("until"),
            principal=params.get("principal"),
            action=params.get("action"),
            outcome=params.get("outcome"),
            project_id=params.get("project"),
            max_rows=params.get("max_rows") or get_compliance_settings().max_report_rows,
        )
    if kind == "dsr-log":
        return build_dsr_log(
            session,
            runtime,
            actor=actor,
            since=params.get("since"),
            until=params.get("until"),
            type=params.get("type"),
        )
    if kind == "monitoring":  # privet.monitoring.report (issue 12)
        from privet.monitoring.report import build_monitoring

        return build_monitoring(
            session,
            runtime,
            actor=actor,
            model_version_id=params.get("model_version"),
            project_id=params.get("project"),
        )
    raise NotFoundError(f"no report of kind {kind!r}; kinds: {', '.join(KINDS)}")


def model_version_project(session: Session, model_version_id: str) -> str:
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise NotFoundError(f"model version {model_version_id!r} does not exist")
    return version.project_id


__all__: Sequence[str] = ("KINDS", "build", "build_request_report", "model_version_project")
