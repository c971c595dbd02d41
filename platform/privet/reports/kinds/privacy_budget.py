"""The ``privacy-budget`` kind: ε per dataset, shared by all its versions, with every
reserve, charge and release by job, and a chart of ε spent over time against the limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from privet.datasets.tables import Dataset, DatasetVersion
from privet.jobs.tables import PrivacyBudget, PrivacyBudgetEntry, TrainingJob
from privet.reports import charts
from privet.reports.evidence import Evidence
from privet.reports.kind import ReportKind, ReportRuntime
from privet.reports.model import Chart, Report, Table, new_report

Points = list[tuple[datetime, float]]
"""Cumulative ε charged after each charge."""

BUDGET_COLUMNS = [
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
]
HISTORY_COLUMNS = [
    ("dataset", "Dataset"),
    ("dataset_version", "Version"),
    ("time", "Time"),
    ("job", "Job"),
    ("kind", "Entry"),
    ("epsilon", "ε"),
    ("spent_after", "ε spent after (dataset)"),
    ("evidence", "Log event"),
]


def _budgets(
    session: Session, project_id: str | None, dataset_version_id: str | None
) -> Sequence[PrivacyBudget]:
    query = select(PrivacyBudget)
    if project_id:
        query = query.where(PrivacyBudget.project_id == project_id)
    if dataset_version_id:
        asked = session.get(DatasetVersion, dataset_version_id)
        query = query.where(PrivacyBudget.dataset_id == (asked.dataset_id if asked else ""))
    return session.exec(query.order_by(col(PrivacyBudget.dataset_id))).all()


def _history(
    entries: Sequence[PrivacyBudgetEntry],
    versions: dict[str, DatasetVersion],
    index: dict[int, int],
    label: str,
) -> tuple[list[dict[str, Any]], Points]:
    """A row per budget entry with the dataset's ε spent after it, and the chart points."""
    rows: list[dict[str, Any]] = []
    spent = 0.0
    points: Points = []
    for e in entries:
        if e.kind == "charge":
            spent += e.epsilon
            points.append((e.created_at, spent))
        dv = versions.get(e.dataset_version_id)
        rows.append(
            {
                "dataset": label,
                "dataset_version": f"v{dv.number}" if dv else e.dataset_version_id,
                "dataset_version_id": e.dataset_version_id,
                "time": e.created_at,
                "job": e.job_id,
                "kind": e.kind,
                "epsilon": e.epsilon,
                "spent_after": round(spent, 6),
                "evidence": f"#{index[e.ledger_entry_id]}" if e.ledger_entry_id in index else "",
            }
        )
    return rows, points


def _delta_charged(session: Session, entries: Sequence[PrivacyBudgetEntry]) -> float:
    charged_jobs = [e.job_id for e in entries if e.kind == "charge"]
    deltas = (
        session.exec(select(TrainingJob.delta).where(col(TrainingJob.id).in_(charged_jobs))).all()
        if charged_jobs
        else []
    )
    return float(sum(d for d in deltas if d is not None))


def _dataset(
    session: Session, ev: Evidence, b: PrivacyBudget, label: str
) -> tuple[dict[str, Any], list[dict[str, Any]], Points]:
    """One dataset's budget row, its history rows and its chart points."""
    versions = {
        v.id: v
        for v in session.exec(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == b.dataset_id)
            .order_by(col(DatasetVersion.number))
        ).all()
    }
    entries = session.exec(
        select(PrivacyBudgetEntry)
        .where(PrivacyBudgetEntry.dataset_id == b.dataset_id)
        .order_by(col(PrivacyBudgetEntry.created_at), col(PrivacyBudgetEntry.id))
    ).all()
    index = ev.indexes_of_entries(e.ledger_entry_id for e in entries if e.ledger_entry_id)
    history, points = _history(entries, versions, index, label)
    total = {
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
        "delta_charged": _delta_charged(session, entries),
    }
    return total, history, points


def _tables(totals: list[dict[str, Any]], history: list[dict[str, Any]]) -> list[Table]:
    return [
        Table(
            "budgets",
            "Budget per dataset (dataset-wide: shared by every version)",
            BUDGET_COLUMNS,
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
            HISTORY_COLUMNS,
            history,
            intro="reserve: ε held for a queued job; charge: the job started and the ε is "
            "spent for good; release: a queued job was cancelled and its ε returned.",
        ),
    ]


def build_privacy_budget(
    session: Session,
    runtime: ReportRuntime,
    *,
    actor: str,
    project_id: str | None = None,
    dataset_version_id: str | None = None,
) -> Report:
    """One budget per dataset, shared by all its versions (uploads and the versions
    erasure derives): ε spent on any version counts against every one."""
    ev = Evidence(session)
    report = new_report(
        "privacy-budget",
        "Privacy budget (ε) per dataset, shared by all its versions",
        actor=actor,
        params={"project": project_id, "dataset_version": dataset_version_id},
    )
    budgets = _budgets(session, project_id, dataset_version_id)
    names = {d.id: d.name for d in session.exec(select(Dataset)).all()}
    totals: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    series: list[tuple[str, Points, float | None]] = []
    for b in budgets:
        label = names.get(b.dataset_id, b.dataset_id)
        total, rows, points = _dataset(session, ev, b, label)
        totals.append(total)
        history += rows
        series.append((label, points, b.epsilon_total))
    report.tables = _tables(totals, history)
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


def _build(
    session: Session, runtime: ReportRuntime, *, actor: str, params: Mapping[str, Any]
) -> Report:
    return build_privacy_budget(
        session,
        runtime,
        actor=actor,
        project_id=params.get("project"),
        dataset_version_id=params.get("dataset_version"),
    )


KIND = ReportKind(
    name="privacy-budget",
    description="ε per dataset (shared by all its versions): total, spent, reserved and "
    "remaining, every reserve/charge/release by job, and ε spent over time.",
    parameters=("project", "dataset_version"),
    builder=_build,
)
