"""The ``access-log`` kind: authorization decisions with their deciding policies, and a
chart of allow/deny per action (at most ``max_rows`` rows).

Built in one pass that only counts (summary, chart, range); the rows and their cited
events are read again, page by page, as the report is rendered, so memory stays bounded
at any number of decisions. Each pass reads only the leaf index and the entry of each
decision (``Evidence.iter_rows``) and parses it once; the rows go out as built
(``Rows(ready=True)``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from itertools import islice
from typing import Any

from sqlmodel import Session

from privet.compliance.settings import get_compliance_settings
from privet.kit.errors import InvalidInputError
from privet.ledger.queries import EventRow
from privet.reports import charts
from privet.reports.evidence import Evidence
from privet.reports.kind import ReportKind, ReportRuntime
from privet.reports.model import Chart, Report, Rows, Table, new_report

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


def _row(item: EventRow, act: str) -> dict[str, Any]:
    """A decision as its JSON row: the columns in order, JSON-ready (``Rows.ready``)."""
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


Decisions = Callable[[], Iterator[tuple[EventRow, str]]]
"""Reads the listed decisions (event, action) again, in index order, on each call."""


def _decisions(
    ev: Evidence,
    *,
    principal: str | None,
    project_id: str | None,
    action: str | None,
    outcome: str | None,
) -> Decisions:
    def read() -> Iterator[tuple[EventRow, str]]:
        found = ev.iter_rows(
            type="auth.decision",
            actor=principal,
            project=project_id,
            since=ev.since,
            until=ev.until,
        )
        for item in found:
            e = item.event
            act = e["details"].get("action", "")
            if (action and act != action) or (outcome and e["outcome"] != outcome):
                continue
            yield item, act

    return read


def _tally(decisions: Decisions, max_rows: int) -> tuple[int, PerAction, set[str], int, int]:
    """One pass for the summary and the chart: count (max_rows + 1: more than listed),
    per action, principals, first and last index (the rows are read again when
    rendered)."""
    per_action: PerAction = {}
    principals: set[str] = set()
    count, first, last = 0, -1, -1
    for item, act in decisions():
        if count == max_rows:
            return count + 1, per_action, principals, first, last
        per_action.setdefault(act, Counter())[item.event["outcome"]] += 1
        principals.add(item.event["actor"])
        first = item.index if count == 0 else first
        last = item.index
        count += 1
    return count, per_action, principals, first, last


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
    ev = Evidence(session, since=since, until=until)
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
    decisions = _decisions(
        ev, principal=principal, project_id=project_id, action=action, outcome=outcome
    )
    count, per_action, principals, first, last = _tally(decisions, max_rows)
    truncated = count > max_rows
    count = min(count, max_rows)
    ev.cite_stream(
        lambda: (i for i, _a in islice(decisions(), count)), count=count, first=first, last=last
    )
    rows = Rows(lambda: (_row(i, a) for i, a in islice(decisions(), count)), count, ready=True)
    report.tables = [Table("decisions", "Decisions", DECISION_COLUMNS, rows)]
    report.facts = [
        ("Decisions", count),
        ("Allowed", sum(c["allow"] for c in per_action.values())),
        ("Denied", sum(c["deny"] for c in per_action.values())),
        ("Principals", len(principals)),
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
