"""The ``ropa`` kind: the record of processing activities (GDPR Art. 30), one activity
per dataset, with the security measures (Art. 32) as the live configuration has them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from privet.auth.tables import Project
from privet.compliance import service as compliance
from privet.datasets import catalog as datasets_catalog
from privet.models.tables import Model, ModelVersion
from privet.reports.evidence import Evidence, refs
from privet.reports.kind import ReportKind, ReportRuntime
from privet.reports.model import Report, Table, new_report
from privet.reports.scope import projects_in_scope

CONTROLLER_COLUMNS = [
    ("project", "Project"),
    ("controller", "Controller"),
    ("controller_contact", "Controller contact"),
    ("dpo_contact", "DPO contact"),
    ("subject_categories", "Categories of data subjects"),
    ("recipients", "Recipients"),
    ("transfers", "Transfers to third countries"),
    ("evidence", "Log events"),
]
ACTIVITY_COLUMNS = [
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
]
MODEL_COLUMNS = [
    ("project", "Project"),
    ("model", "Model"),
    ("version", "Version"),
    ("state", "State"),
    ("purposes", "Purposes"),
    ("private", "Trained with DP"),
    ("epsilon", "ε"),
]


def security_measures(runtime: ReportRuntime) -> list[dict[str, Any]]:
    """Art. 32 measures as the live configuration has them."""
    from privet.crypto.settings import get_crypto_settings
    from privet.datasets.schemas import DEFAULT_EPSILON_TOTAL
    from privet.inference.settings import get_inference_settings
    from privet.ledger.settings import get_ledger_settings

    crypto = get_crypto_settings()
    provider = (
        "hardware security module (PKCS#11)"
        if crypto.key_provider == "pkcs11"
        else "local master key file (0600)"
    )
    ledger_settings = get_ledger_settings()
    case_days = get_inference_settings().case_text_retention_days
    return [
        {
            "measure": "Encryption at rest",
            "detail": "AES-256-GCM, one data key per dataset "
            f"version, model version, export, review reason and review case text, wrapped by a "
            f"master key held in a {provider}; "
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
        {
            "measure": "Human review (Art. 22)",
            "detail": "predictions the decision rules refer or hold go to a named reviewer "
            "(never the person accountable for the deciding application). So that the "
            "reviewer can read the case (Art. 22(3) human intervention), the input text of "
            "these predictions only (ordinary predictions keep none) is sealed with a data "
            "key of its own and shown only to whoever may decide the review; the key is "
            "destroyed (crypto-shredding, one audit event each) when a review closes the "
            "case, when the subject is erased, or at the latest after "
            f"{case_days} days (PRIVET_INFERENCE_CASE_TEXT_RETENTION_DAYS). Each reviewer's "
            "reason is sealed with a data key of its own and destroyed when its subject is "
            "erased.",
        },
    ]


def _controller_row(
    cfg: Any, project: Project, subjects: list[str], recipients: list[str], ev: Evidence
) -> dict[str, Any]:
    pev = ev.events(object_id=project.id, types=("project.",), limit=50)
    return {
        "project": project.name,
        "controller": cfg.controller or "not declared",
        "controller_contact": cfg.controller_contact or "not declared",
        "dpo_contact": cfg.dpo_contact or "not declared",
        "subject_categories": subjects,
        "recipients": recipients,
        "transfers": cfg.transfers or "none",
        "evidence": refs(pev),
    }


def _activity_rows(
    session: Session, ev: Evidence, project: Project, subjects: list[str], recipients: list[str]
) -> list[dict[str, Any]]:
    """One processing activity per dataset that still holds an active version."""
    rows = []
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
        rows.append(
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
    return rows


def _model_rows(session: Session, project: Project) -> list[dict[str, Any]]:
    rows = []
    for model in session.exec(select(Model).where(Model.project_id == project.id)).all():
        for v in session.exec(
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id)
            .order_by(col(ModelVersion.number))
        ).all():
            rows.append(
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
    return rows


def build_ropa(
    session: Session, runtime: ReportRuntime, *, actor: str, project_id: str | None = None
) -> Report:
    ev = Evidence(session)
    report = new_report(
        "ropa",
        "Record of processing activities (GDPR Art. 30)",
        actor=actor,
        params={"project": project_id},
    )
    controllers: list[dict[str, Any]] = []
    activities: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    for project in projects_in_scope(session, project_id):
        cfg = compliance.get_project_settings(session, project_id=project.id)
        subjects = cfg.subject_categories or ["not declared"]
        recipients = cfg.recipients or ["none beyond the controller"]
        controllers.append(_controller_row(cfg, project, subjects, recipients, ev))
        activities += _activity_rows(session, ev, project, subjects, recipients)
        models += _model_rows(session, project)
    report.tables = [
        Table(
            "controllers",
            "Controllers and data protection officers",
            CONTROLLER_COLUMNS,
            controllers,
        ),
        Table(
            "activities",
            "Processing activities (one per dataset)",
            ACTIVITY_COLUMNS,
            activities,
            intro="Each dataset registered on the platform is one processing activity: "
            "training classification models for the declared purposes, and serving them.",
        ),
        Table("models", "Models serving these purposes", MODEL_COLUMNS, models),
        Table(
            "security",
            "Technical and organisational security measures (Art. 32)",
            [("measure", "Measure"), ("detail", "In force")],
            rows=security_measures(runtime),
        ),
    ]
    report.facts = [
        ("Projects", len(controllers)),
        ("Processing activities", len(activities)),
        ("Model versions", len(models)),
    ]
    report.data = {"security_policy_version": runtime.authorizer.engine.version}
    report.ledger = ev.to_json()
    return report


def _build(
    session: Session, runtime: ReportRuntime, *, actor: str, params: Mapping[str, Any]
) -> Report:
    return build_ropa(session, runtime, actor=actor, project_id=params.get("project"))


KIND = ReportKind(
    name="ropa",
    description="Record of processing activities (GDPR Art. 30): controllers, purposes, "
    "legal bases, categories, recipients, retention and security measures.",
    parameters=("project",),
    builder=_build,
)
