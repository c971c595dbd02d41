"""The ``monitoring`` kind: one model version's drift, live quality, alerts and human
reviews over time, with time-series charts.

It cites the ledger events it relies on: threshold crossings, suspensions and
resumptions of the version, and the reviews that overturned its decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from privet.db import get_in_project
from privet.ledger.queries import AuditEventPublic
from privet.models.tables import ModelVersion
from privet.monitoring.service import monitoring_view
from privet.monitoring.settings import get_monitoring_settings
from privet.reports import charts
from privet.reports.evidence import Evidence, refs
from privet.reports.kind import ReportKind, ReportRuntime
from privet.reports.model import Chart, Report, Table, new_report

INTRO = (
    "How this model version behaved in service: drift of its inputs and outputs "
    "against its validation-time reference, its live quality against its evaluation "
    "at approval, the thresholds crossed, and the decisions people reviewed. Built "
    "from aggregates only: no input text is kept by the platform."
)
WINDOW_COLUMNS = [
    ("window", "Window start"),
    ("predictions", "Predictions"),
    ("label_js", "Label JS"),
    ("confidence_psi", "Confidence PSI"),
    ("length_psi", "Length PSI"),
    ("embedding_shift", "Embedding shift"),
    ("drifted", "Drifted"),
    ("outcomes", "Outcomes"),
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro-F1"),
    ("ece", "Calibration error"),
    ("below_floor", "Below floor"),
]
ALERT_COLUMNS = [
    ("at", "When"),
    ("window", "Window"),
    ("feature", "Feature"),
    ("value", "Value"),
    ("threshold", "Threshold"),
    ("action", "Action"),
    ("evidence", "Ledger"),
]
DRIFT_FEATURES = ("label_js", "confidence_psi", "length_psi", "embedding_shift")


def _r(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v


def _overturned(ev: Evidence, reviews: dict[str, Any]) -> list[AuditEventPublic]:
    """The review events that overturned a decision (of the first 100 overturned), cited."""
    found: list[AuditEventPublic] = []
    for pid in reviews["overturned_predictions"][:100]:
        found += [
            e
            for e in ev.events(object_id=pid, types=("prediction.reviewed",), limit=10, cite=False)
            if e.event.get("details", {}).get("decision") == "overturned"
        ]
    for e in found:
        ev.cite(e)
    return found


def _facts(view: dict[str, Any], version: ModelVersion) -> list[tuple[str, Any]]:
    approval, th, reviews = view["approval_quality"], view["thresholds"], view["reviews"]
    return [
        ("Model", view["model"]),
        ("Version", view["model_version"]),
        ("Version id", version.id),
        ("Project", version.project_id),
        ("State", view["state"]),
        ("Window length (s)", view["window_s"]),
        ("Reference", f"{view['reference']['source']} ({view['reference']['examples']} examples)"),
        ("Accuracy at approval", _r(approval.get("accuracy"))),
        ("Macro-F1 at approval", _r(approval.get("macro_f1"))),
        ("Accuracy floor", _r(th["accuracy_floor"])),
        ("Automatic suspension", th["auto_suspend"]),
        ("Thresholds crossed", len(view["alerts"])),
        ("Decisions sent to review", reviews["pending_review"]),
        ("Decisions referred", reviews["refer"]),
        ("Reviews: confirmed", reviews["confirmed"]),
        ("Reviews: overturned", reviews["overturned"]),
    ]


def _window_rows(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for w in windows:
        d, q = w["drift"], w["quality"]
        rows.append(
            {
                "window": w["window_start"],
                "predictions": w["predictions"],
                **{feature: _r(d.get(feature)) for feature in DRIFT_FEATURES},
                "drifted": w["drifted"],
                "outcomes": q["outcomes"],
                "accuracy": _r(q["accuracy"]),
                "macro_f1": _r(q["macro_f1"]),
                "ece": _r(q["ece"]),
                "below_floor": w["below_floor"],
            }
        )
    return rows


def _alert_rows(
    alerts: list[dict[str, Any]], alert_events: list[AuditEventPublic]
) -> list[dict[str, Any]]:
    cited = {e.event["objects"].get("alert"): e for e in alert_events}
    return [
        {
            "at": a["created_at"],
            "window": a["window_start"],
            "feature": a["feature"],
            "value": _r(a["value"]),
            "threshold": _r(a["threshold"]),
            "action": a["action"],
            "evidence": refs([cited[a["id"]]]) if a["id"] in cited else "",
        }
        for a in alerts
    ]


def _windows_table(view: dict[str, Any]) -> Table:
    th = view["thresholds"]
    return Table(
        "windows",
        "Drift and live quality per window",
        WINDOW_COLUMNS,
        _window_rows(view["windows"]),
        intro=f"Thresholds: label JS > {th['label_js']}, PSI > {th['confidence_psi']}, "
        f"embedding shift > {th['embedding_shift']} (windows of at least "
        f"{th['min_window_count']} predictions); accuracy below {_r(th['accuracy_floor'])} "
        f"(at least {th['min_outcomes']} outcomes).",
        empty="No prediction has been served yet.",
    )


def _tables(
    view: dict[str, Any],
    alert_events: list[AuditEventPublic],
    overturned: list[AuditEventPublic],
    state_events: list[AuditEventPublic],
) -> list[Table]:
    return [
        _windows_table(view),
        Table(
            "alerts",
            "Thresholds crossed",
            ALERT_COLUMNS,
            _alert_rows(view["alerts"], alert_events),
            empty="No threshold has been crossed.",
        ),
        Table(
            "overturned",
            "Decisions overturned by a reviewer",
            [("prediction", "Prediction"), ("label", "Corrected label"), ("evidence", "Ledger")],
            [
                {
                    "prediction": e.event["objects"].get("prediction"),
                    "label": e.event.get("details", {}).get("label"),
                    "evidence": refs([e]),
                }
                for e in overturned
            ],
            empty="No decision of this version has been overturned.",
        ),
        Table(
            "state",
            "Serving state changes",
            [("at", "When"), ("type", "Event"), ("evidence", "Ledger")],
            [
                {"at": e.event.get("time"), "type": e.event["type"], "evidence": refs([e])}
                for e in state_events
            ],
            empty="No state change recorded.",
        ),
    ]


def charts_of(windows: list[dict[str, Any]], th: dict[str, Any]) -> list[Chart]:
    """Drift per feature against its threshold, live accuracy against the floor and the
    calibration error per window (the report and the console's Monitoring page)."""
    if not windows:
        return []
    series = []
    for feature in DRIFT_FEATURES:
        pts = [
            (w["window_start"], float(w["drift"][feature]))
            for w in windows
            if w["drift"].get(feature) is not None
        ]
        series.append((feature, pts, float(th[feature])))
    out = [
        Chart(
            "Drift per window",
            charts.step_chart("Drift per window", series, y_label="score"),
            caption="Dashed lines: thresholds.",
        )
    ]
    qpts = [
        (w["window_start"], float(w["quality"]["accuracy"]))
        for w in windows
        if w["quality"]["accuracy"] is not None
    ]
    if qpts:
        out.append(
            Chart(
                "Live accuracy per window",
                charts.step_chart(
                    "Live accuracy per window",
                    [("accuracy", qpts, th["accuracy_floor"])],
                    y_label="accuracy",
                ),
                caption="Dashed line: the accuracy floor.",
            )
        )
    epts = [
        (w["window_start"], float(w["quality"]["ece"]))
        for w in windows
        if w["quality"].get("ece") is not None
    ]
    if epts:
        out.append(
            Chart(
                "Calibration error per window",
                charts.step_chart(
                    "Calibration error per window",
                    [("expected calibration error", epts, None)],
                    y_label="ECE",
                ),
                caption="Expected calibration error: the gap between confidence and accuracy.",
            )
        )
    return out


def build_monitoring(
    session: Session,
    runtime: ReportRuntime,
    *,
    actor: str,
    model_version_id: str,
    project_id: str | None = None,
) -> Report:
    version = get_in_project(
        session, ModelVersion, model_version_id, project_id=project_id, what="model version"
    )
    view = monitoring_view(session, version=version, cfg=get_monitoring_settings(), windows=1000)
    ev = Evidence(session)
    alert_events = ev.events(object_id=version.id, types=("monitoring.",), limit=500)
    state_events = ev.events(
        object_id=version.id,
        types=("model_version.suspended", "model_version.resumed", "model_version.approved"),
        limit=100,
    )
    overturned = _overturned(ev, view["reviews"])
    report = new_report(
        "monitoring",
        f"Monitoring: {view['model']} v{view['model_version']}",
        actor=actor,
        params={"model_version": version.id, "project": version.project_id},
    )
    report.intro = INTRO
    report.facts = _facts(view, version)
    report.tables = _tables(view, alert_events, overturned, state_events)
    report.charts += charts_of(view["windows"], view["thresholds"])
    report.notes.append(
        "Drift and quality come from aggregates kept per model version and time window "
        "(predicted-label counts, confidence and input-length histograms, moments of the "
        "model's sentence embedding); the platform keeps no input text (docs/MONITORING.md)."
    )
    report.data = {
        "model_version_id": version.id,
        "state": view["state"],
        "windows": view["windows"],
        "alerts": view["alerts"],
        "reviews": view["reviews"],
        "approval_quality": view["approval_quality"],
        "thresholds": view["thresholds"],
    }
    report.ledger = ev.to_json()
    return report


def _build(
    session: Session, runtime: ReportRuntime, *, actor: str, params: Mapping[str, Any]
) -> Report:
    return build_monitoring(
        session,
        runtime,
        actor=actor,
        model_version_id=params["model_version"],
        project_id=params.get("project"),
    )


KIND = ReportKind(
    name="monitoring",
    description="One model version in service: drift and live quality per window, "
    "thresholds crossed, decisions overturned by reviewers, serving-state changes.",
    parameters=("model_version", "project"),
    required=("model_version",),
    builder=_build,
)
