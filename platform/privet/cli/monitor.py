"""`privet monitor show MODEL[@VERSION]`: drift, live quality and reviews of a served
model version, as a compact table with sparkline trends; `privet monitor reference
MODEL[@VERSION]`: (re)build its drift reference (client commands).

    privet monitor show --project P risk        # the serving version
    privet monitor show --project P risk@3 --windows 24
    privet monitor show --project P risk@3 --json
    privet monitor reference --project P risk@3

Uses PRIVET_URL and PRIVET_API_KEY (the caller needs ``monitoring.read``, and
``monitoring.reference.build`` to rebuild a reference).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from privet.cli.client import call
from privet.cli.output import Output, OutputOption, emit, group
from privet.monitoring.stats import sparkline

monitor_app = group("Monitoring of served model versions: drift, quality, reference.")
_console = Console()

FEATURES = (
    ("label_js", "label JS"),
    ("confidence_psi", "conf PSI"),
    ("length_psi", "len PSI"),
    ("embedding_shift", "emb shift"),
)


def version_path(project: str, model: str) -> str:
    name, sep, version = model.partition("@")
    if not name or (sep and not version):
        raise typer.BadParameter("expected MODEL or MODEL@VERSION", param_hint="MODEL")
    return f"/v1/projects/{project}/models/{name}/versions/{version or 'serving'}"


def monitoring_path(project: str, model: str) -> str:
    return version_path(project, model) + "/monitoring"


def _f(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(view: dict[str, Any], console: Console) -> None:
    th = view["thresholds"]
    approval = view.get("approval_quality") or {}
    reviews = view["reviews"]
    ref = view["reference"]
    console.print(
        f"[bold]{view['model']}[/] v{view['model_version']} ({view['model_version_id']}) "
        f"state [bold]{view['state']}[/] · reference {ref['source']} "
        f"({ref['examples']} examples) · accuracy at approval "
        f"{_f(approval.get('accuracy'))} · floor {_f(th.get('accuracy_floor'))}"
    )
    if ref.get("status", "ready") != "ready":
        why = f": {ref['detail']}" if ref.get("detail") else ""
        console.print(
            f"[yellow]reference {ref.get('status')}{why}[/] · only label drift is scored; "
            f"rebuild: privet monitor reference --project {view['project']} "
            f"{view['model']}@{view['model_version']}"
        )
    windows = view["windows"]
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("window (UTC)")
    table.add_column("n", justify="right")
    for _key, label in FEATURES:
        table.add_column(label, justify="right")
    for label in ("outcomes", "acc", "F1", "ECE", "flags"):
        table.add_column(label, justify="right" if label != "flags" else "left")
    for w in windows:
        drifted = set(w["drifted"])
        cells = []
        for key, _label in FEATURES:
            text = _f(w["drift"].get(key))
            cells.append(f"[red]{text}[/]" if key in drifted else text)
        q = w["quality"]
        flags = sorted(drifted) + (["below floor"] if w["below_floor"] else [])
        acc = _f(q["accuracy"])
        table.add_row(
            str(w["window_start"])[:16].replace("T", " "),
            str(w["predictions"]),
            *cells,
            str(q["outcomes"]),
            f"[red]{acc}[/]" if w["below_floor"] else acc,
            _f(q["macro_f1"]),
            _f(q["ece"]),
            ", ".join(flags),
        )
    if windows:
        console.print(table)
    else:
        console.print("no prediction served yet")
    trends = [(label, [w["drift"].get(key) for w in windows]) for key, label in FEATURES]
    trends.append(("accuracy", [w["quality"]["accuracy"] for w in windows]))
    trends.append(("predictions", [float(w["predictions"]) for w in windows]))
    for label, values in trends:
        line = sparkline(values)
        if line.strip():
            console.print(f"  {label:<12} {line}")
    console.print(
        f"alerts {len(view['alerts'])} · review queue: {reviews['open']} open, "
        f"{reviews['pending_review']} sent to review, {reviews['refer']} referred, "
        f"{reviews['confirmed']} confirmed, {reviews['overturned']} overturned"
    )


@monitor_app.command("show")
def show(
    model: Annotated[str, typer.Argument(help="MODEL (its serving version) or MODEL@VERSION.")],
    project: Annotated[str, typer.Option(help="Project id.")],
    windows: Annotated[int, typer.Option(help="How many recent windows to show.")] = 24,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    output: OutputOption = None,
) -> None:
    """Drift, live quality, alerts and reviews of a model version, per time window."""
    view = call("GET", monitoring_path(project, model), params={"windows": windows})
    emit(view, Output.json if as_json else output, render=lambda v: render(v, _console))


@monitor_app.command("reference")
def reference(
    model: Annotated[str, typer.Argument(help="MODEL (its serving version) or MODEL@VERSION.")],
    project: Annotated[str, typer.Option(help="Project id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    output: OutputOption = None,
) -> None:
    """(Re)build a version's drift reference from its evaluation split (approval does it
    by itself; run this when that build failed or was interrupted)."""
    status = call("POST", version_path(project, model) + ":monitoring-reference")
    emit(status, Output.json if as_json else output, render=_render_reference)


def _render_reference(status: dict[str, Any]) -> None:
    sampled = (
        f" of {status['rows_available']}"
        if status.get("rows_available") not in (None, status["examples"])
        else ""
    )
    _console.print(
        f"reference [bold]{status['status']}[/] for {status['model_version_id']}: "
        f"{status['examples']}{sampled} rows of the {status.get('split')} split of dataset "
        f"version {status.get('dataset_version_id')}"
    )
