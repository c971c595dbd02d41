"""The ``monitoring`` report kind: one model version's drift, live quality, alerts and
human reviews over time, with time-series charts, through the reports package's model
(``privet.reports.model.Report``) and renderers (JSON, CSV, HTML, PDF).

It cites the ledger events it relies on: threshold crossings, suspensions and
resumptions of the version, and the reviews that overturned its decisions.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from privet.kit.errors import InvalidInputError, NotFoundError
from privet.kit.ids import utcnow
from privet.models.tables import ModelVersion
from privet.monitoring.hub import get_monitoring_settings_cached
from privet.monitoring.service import monitoring_view, review_summary
from privet.reports import charts
from privet.reports.evidence import Evidence, refs
from privet.reports.model import Chart, Report, Table


def _r(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v


def build_monitoring(
    session: Session,
    runtime: Any,
    *,
    actor: str,
    model_version_id: str | None,
    project_id: str | None = None,
) -> Report:
    if not model_version_id:
        raise InvalidInputError("monitoring needs model_version=<id>", field="model_version")
    version = session.get(ModelVersion, model_version_id)
    if version is None or (project_id is not None and version.project_id != project_id):
        raise NotFoundError(f"model version {model_version_id!r} does not exist")
    cfg = get_monitoring_settings_cached()
    view = monitoring_view(session, version=version, cfg=cfg, windows=1000)
    ev = Evidence(session)
    alert_events = ev.events(object_id=version.id, types=("monitoring.",), limit=500)
    state_events = ev.events(
        object_id=version.id,
        types=("model_version.suspended", "model_version.resumed", "model_version.approved"),
        limit=100,
    )
    reviews = view["reviews"]
    overturn_events = []
    for pid in reviews["overturned_predictions"][:100]:
        overturn_events += [
            e
            for e in ev.events(object_id=pid, types=("prediction.reviewed",), limit=10, cite=False)
            if e.event.get("details", {}).get("decision") == "overturned"
        ]
    for e in overturn_events:
        ev.cite_index(e.index)
    approval = view["approval_quality"]
    th = view["thresholds"]
    report = Report(
        kind="monitoring",
        title=f"Monitoring: {view['model']} v{view['model_version']}",
        generated_at=utcnow(),
        generated_by=actor,
        parameters={"model_version": version.id, "project": version.project_id},
        intro="How this model version behaved in service: drift of its inputs and outputs "
        "against its validation-time reference, its live quality against its evaluation "
        "at approval, the thresholds crossed, and the decisions people reviewed. Built "
        "from aggregates only: no input text is kept by the platform.",
    )
    report.facts = [
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
    rows = []
    for w in view["windows"]:
        d, q = w["drift"], w["quality"]
        rows.append(
            {
                "window": w["window_start"],
                "predictions": w["predictions"],
                "label_js": _r(d.get("label_js")),
                "confidence_psi": _r(d.get("confidence_psi")),
                "length_psi": _r(d.get("length_psi")),
                "embedding_shift": _r(d.get("embedding_shift")),
                "drifted": w["drifted"],
                "outcomes": q["outcomes"],
                "accuracy": _r(q["accuracy"]),
                "macro_f1": _r(q["macro_f1"]),
                "ece": _r(q["ece"]),
                "below_floor": w["below_floor"],
            }
        )
    cited_alerts = {e.event["objects"].get("alert"): e for e in alert_events}
    report.tables = [
        Table(
            "windows",
            "Drift and live quality per window",
            [
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
            ],
            rows,
            intro=f"Thresholds: label JS > {th['label_js']}, PSI > {th['confidence_psi']}, "
            f"embedding shift > {th['embedding_shift']} (windows of at least "
            f"{th['min_window_count']} predictions); accuracy below {_r(th['accuracy_floor'])} "
            f"(at least {th['min_outcomes']} outcomes).",
            empty="No prediction has been served yet.",
        ),
        Table(
            "alerts",
            "Thresholds crossed",
            [
                ("at", "When"),
                ("window", "Window"),
                ("feature", "Feature"),
                ("value", "Value"),
                ("threshold", "Threshold"),
                ("action", "Action"),
                ("evidence", "Ledger"),
            ],
            [
                {
                    "at": a["created_at"],
                    "window": a["window_start"],
                    "feature": a["feature"],
                    "value": _r(a["value"]),
                    "threshold": _r(a["threshold"]),
                    "action": a["action"],
                    "evidence": refs([cited_alerts[a["id"]]]) if a["id"] in cited_alerts else "",
                }
                for a in view["alerts"]
            ],
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
                for e in overturn_events
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
    windows = view["windows"]
    if windows:
        series = []
        for feature in ("label_js", "confidence_psi", "length_psi", "embedding_shift"):
            pts = [
                (w["window_start"], float(w["drift"][feature]))
                for w in windows
                if w["drift"].get(feature) is not None
            ]
            series.append((feature, pts, float(th[feature])))
        report.charts.append(
            Chart(
                "Drift per window",
                charts.step_chart("Drift per window", series, y_label="score"),
                caption="Dashed lines: thresholds.",
            )
        )
        qpts = [
            (w["window_start"], float(w["quality"]["accuracy"]))
            for w in windows
            if w["quality"]["accuracy"] is not None
        ]
        if qpts:
            report.charts.append(
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
        "reviews": reviews,
        "approval_quality": approval,
        "thresholds": th,
    }
    report.ledger = ev.to_json()
    return report


def lineage_review_table(session: Session, model_version_id: str) -> Table:
    """Human reviews of a version's decisions, for the model-lineage report."""
    s = review_summary(session, model_version_id)
    return Table(
        "reviews",
        "Human reviews of this version's decisions",
        [("kind", "Reviews"), ("count", "Count"), ("predictions", "Predictions")],
        [
            {"kind": "sent to review (pending_review)", "count": s["pending_review"]},
            {"kind": "referred (refer)", "count": s["refer"]},
            {"kind": "confirmed", "count": s["confirmed"]},
            {
                "kind": "overturned",
                "count": s["overturned"],
                "predictions": s["overturned_predictions"],
            },
        ],
    )
