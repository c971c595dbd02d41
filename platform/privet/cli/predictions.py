"""`privet predictions review|contest|outcome|explain|queue`: what people do with
predictions after they are made (client commands). `privet predict` makes them.

- review: an approver confirms or overturns a prediction (a named person decides);
- reviews: the reviews and contests of a prediction, with their reasons;
- case: the sealed input text of a review case, for whoever may decide it;
- contest: record that the data subject contests it (pending until reviewed);
- outcome: the true label, once known (live quality);
- explain: token attributions, resubmitting the exact input (checked by its digest);
- queue: predictions the decision rules kept from being final;
- sweep-cases: shred case texts past their retention (server-side, like `datasets sweep`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from privet.cli.client import call
from privet.cli.output import (
    AfterOption,
    Column,
    LimitOption,
    OutputOption,
    console,
    emit,
    group,
    human,
    next_page_hint,
    table,
)

predictions_app = group("Reviews, contests, outcomes, explanations and the review queue.")

ProjectArg = Annotated[str, typer.Argument(help="Project id.")]
PredictionArg = Annotated[str, typer.Argument(help="Prediction id (`privet predict` shows it).")]


def _path(project: str, prediction: str, verb: str) -> str:
    return f"/v1/projects/{project}/predictions/{prediction}:{verb}"


@predictions_app.command("review")
def review(
    project: ProjectArg,
    prediction: PredictionArg,
    overturn_to: Annotated[
        str | None,
        typer.Option(help="Overturn the prediction to this label (default: confirm it)."),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "",
    output: OutputOption = None,
) -> None:
    """Confirm a prediction, or overturn it to another label (a human review)."""
    body: dict[str, Any] = {"kind": "review", "reason": reason}
    if overturn_to is None:
        body["decision"] = "confirmed"
    else:
        body.update(decision="overturned", label=overturn_to)
    emit(call("POST", _path(project, prediction, "review"), json=body), output)


@predictions_app.command("contest")
def contest(
    project: ProjectArg,
    prediction: PredictionArg,
    reason: Annotated[str, typer.Option(help="What the data subject says (recorded).")] = "",
    output: OutputOption = None,
) -> None:
    """Record that a prediction is contested (GDPR Art. 22); a review decides it."""
    body = {"kind": "contest", "reason": reason}
    emit(call("POST", _path(project, prediction, "review"), json=body), output)


@predictions_app.command("reviews")
def reviews(project: ProjectArg, prediction: PredictionArg, output: OutputOption = None) -> None:
    """The reviews and contests of a prediction, with their reasons (for reviewers)."""
    data = call("GET", f"/v1/projects/{project}/predictions/{prediction}/reviews")
    columns = ["id", "kind", "decision", "label", "reviewer", "created_at", "reason"]
    emit(data, output, render=lambda rows: console.print(table(rows, columns)))


@predictions_app.command("case")
def case(project: ProjectArg, prediction: PredictionArg, output: OutputOption = None) -> None:
    """The input text of a review case (referred or held), for whoever may decide it;
    gone once a review closes it, its retention ends or its subject is erased."""
    data = call("GET", f"/v1/projects/{project}/predictions/{prediction}/case")

    def render(view: dict[str, Any]) -> None:
        console.print(
            f"{view['prediction_id']} sealed {view['sealed_at']}, kept until "
            f"{view['retained_until']} (or until reviewed)",
            highlight=False,
        )
        console.print(view["text"], highlight=False, markup=False)

    emit(data, output, render=render)


@predictions_app.command("sweep-cases")
def sweep_cases() -> None:
    """Crypto-shred the texts of review cases past PRIVET_INFERENCE_CASE_TEXT_RETENTION_DAYS
    (server-side: run it where PRIVET_HOME / PRIVET_DATABASE_URL point, e.g. from cron;
    predictions that refer a case also sweep). One audit event each."""
    from privet.config import get_settings
    from privet.db import get_engine, session_scope
    from privet.inference import cases

    settings = get_settings()
    total = 0
    while True:  # in bounded transactions
        with session_scope(get_engine(settings.effective_database_url)) as session:
            n = cases.sweep_case_retention(session)
        total += n
        if n == 0:
            break
    console.print(f"{total} case text(s) shredded", highlight=False)


@predictions_app.command("outcome")
def outcome(
    project: ProjectArg,
    prediction: PredictionArg,
    label: Annotated[str, typer.Argument(help="The true label.")],
    output: OutputOption = None,
) -> None:
    """Record what the right label turned out to be (ground truth for live quality)."""
    emit(call("POST", _path(project, prediction, "outcome"), json={"label": label}), output)


@predictions_app.command("explain")
def explain(
    project: ProjectArg,
    prediction: PredictionArg,
    text: Annotated[str, typer.Argument(help="The very text that was classified.")],
    top: Annotated[int, typer.Option(help="Tokens shown in the table.")] = 10,
    output: OutputOption = None,
) -> None:
    """Which tokens drove a prediction (resubmit its input; checked by digest)."""
    data = call("POST", _path(project, prediction, "explain"), json={"text": text})

    def render(view: dict[str, Any]) -> None:
        console.print(
            f"{view['label']} ({human(view['score'])}) by v{view['model_version']} "
            f"({view['model_version_id']}), {view['method']} against {view['baseline']}",
            highlight=False,
        )
        ranked = sorted(view["tokens"], key=lambda t: abs(t["attribution"]), reverse=True)
        console.print(table(ranked[:top], ["token", Column("attribution")]))

    emit(data, output, render=render)


@predictions_app.command("queue")
def queue(
    project: ProjectArg,
    status: Annotated[str, typer.Option(help="open, closed or all.")] = "open",
    after: AfterOption = None,
    limit: LimitOption = 200,
    output: OutputOption = None,
) -> None:
    """The review queue: predictions held for a human (pending_review, refer), a page at
    a time, oldest first."""
    params = {"status": status, "limit": limit, **({"after": after} if after else {})}
    data = call("GET", f"/v1/projects/{project}/review-queue", params=params)

    def render(view: dict[str, Any]) -> None:
        items = view["items"]
        console.print(f"{view['open']} open", highlight=False)
        if items:
            columns = ["prediction_id", "status", "rules", "label", "score", "purpose"]
            console.print(table(items, [*columns, "created_at", "review"]))
        next_page_hint(view.get("next"))

    emit(data, output, render=render)
