"""The ``access-log`` kind: authorization decisions with their deciding policies, and a
chart of allow/deny per action (at most ``max_rows`` rows)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session

from privet.compliance.settings import get_compliance_settings
from privet.kit.errors import InvalidInputError
from privet.ledger.queries import AuditEventPublic
from privet.reports import charts
from privet.reports.evidence import Evidence
from privet.reports.kind import ReportKind, ReportRuntime
from privet.reports.model import Chart, Report, Table, new_report

PerAction = dict[str, Counter[str]]
"""Action → outcome ("allow"/"deny") → decisions listed."""

DECISION_COLUMNS = [
    ("index", "Log event"),
    ("time", "Time"),
    ("principal", "Principal"),
    ("project", "Project"),
    ("action", "Action"),
    ("outcome", "Outcome"),
    ("resource", "Resource"),
    ("policies", "Deciding policies"),
]


def _row(item: AuditEventPublic, act: str) -> dict[str, Any]:
    e = item.event
    return {
        "index": f"#{item.index}",
        "time": e["time"],
        "principal": e["actor"],
        "project": e["project"] or "",
        "action": act,
        "outcome": e["outcome"],
        "resource": ", ".join(f"{k}={v}" for k, v in e["objects"].items()),
        "policies": e["details"].get("policies", []),
    }


def _rows(
    ev: Evidence,
    found: list[AuditEventPublic],
    *,
    action: str | None,
    outcome: str | None,
    max_rows: int,
) -> tuple[list[dict[str, Any]], PerAction, bool]:
    """The decisions that pass the filters (cited), counts per action, and whether more
    than ``max_rows`` matched."""
    rows: list[dict[str, Any]] = []
    per_action: PerAction = {}
    for item in found:
        e = item.event
        act = e["details"].get("action", "")
        if action and act != action:
            continue
        if outcome and e["outcome"] != outcome:
            continue
        if len(rows) >= max_rows:
            return rows, per_action, True
        ev.cite_index(item.index)
        per_action.setdefault(act, Counter())[e["outcome"]] += 1
        rows.append(_row(item, act))
    return rows, per_action, False


def _chart(per_action: PerAction) -> Chart:
    actions = sorted(per_action)
    return Chart(
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


def build_access_log(
    session: Session,
    runtime: ReportRuntime,
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
    report = new_report(
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
    rows, per_action, truncated = _rows(
        ev, found, action=action, outcome=outcome, max_rows=max_rows
    )
    report.tables = [Table("decisions", "Decisions", DECISION_COLUMNS, rows)]
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
    report.charts.append(_chart(per_action))
    report.ledger = ev.to_json()
    return report


def _build(
    session: Session, runtime: ReportRuntime, *, actor: str, params: Mapping[str, Any]
) -> Report:
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


KIND = ReportKind(
    name="access-log",
    description="Authorization decisions with their deciding policies, and allow/deny per action.",
    parameters=("since", "until", "principal", "action", "outcome", "project"),
    builder=_build,
)
