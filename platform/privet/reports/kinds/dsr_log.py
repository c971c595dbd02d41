"""The ``dsr-log`` kind: the data-subject request log (received, deadlines, answered, on
time, outcome), platform-wide and without identifiers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session

from privet.compliance import service as compliance
from privet.compliance.settings import get_compliance_settings
from privet.reports import charts
from privet.reports.evidence import Evidence, refs
from privet.reports.kind import ReportKind, ReportRuntime
from privet.reports.model import Chart, Report, Table, new_report

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
    runtime: ReportRuntime,
    *,
    actor: str,
    since: datetime | None = None,
    until: datetime | None = None,
    type: str | None = None,
) -> Report:
    ev = Evidence(session, since=since, until=until)
    report = new_report(
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


def _build(
    session: Session, runtime: ReportRuntime, *, actor: str, params: Mapping[str, Any]
) -> Report:
    return build_dsr_log(
        session,
        runtime,
        actor=actor,
        since=params.get("since"),
        until=params.get("until"),
        type=params.get("type"),
    )


KIND = ReportKind(
    name="dsr-log",
    description="The data-subject request log: received, deadlines, acknowledged, "
    "answered, on time, outcome; no identifiers.",
    parameters=("since", "until", "type"),
    builder=_build,
)
