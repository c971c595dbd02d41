"""`privet train ...` (training jobs) and `privet models ...` (the model registry).

Client commands: they talk to a running server (PRIVET_URL, PRIVET_API_KEY).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column as TableColumn

from privet.cli.client import call, call_pages, download, fetch_text
from privet.cli.job_options import (
    ClassBalanceOption,
    DistillFromOption,
    InitFromOption,
    SelectionOption,
)
from privet.cli.output import (
    AfterOption,
    AllPagesOption,
    Column,
    LimitOption,
    OutputOption,
    QuietOption,
    emit,
    err,
    group,
    human,
    next_page_hint,
    table,
)

train_app = group("Training jobs: submit (and watch), list, show, history, cancel (client).")
models_app = group("The model registry: list, show, card, approve, retire, resume, export.")
console = Console()

TERMINAL = {"succeeded", "failed", "cancelled"}
ProjectArg = Annotated[str, typer.Argument(help="Project id.")]


def _jobs(project: str) -> str:
    return f"/v1/projects/{project}/training-jobs"


def _describe(job: dict[str, Any]) -> str:
    """The job's state in one short, rounded phrase (the progress line's status)."""
    p = job.get("progress") or {}
    metrics = (job.get("result") or {}).get("metrics") or {}
    epsilon = ((job.get("result") or {}).get("privacy") or {}).get("epsilon", p.get("epsilon"))
    parts = []
    if metrics:
        parts.append(f"acc {_r(metrics.get('accuracy'))}")
        parts.append(f"macro-F1 {_r(metrics.get('macro_f1'))}")
    else:
        parts.append(f"epoch {p.get('epoch', '-')}/{p.get('epochs', '-')}")
        if p.get("loss") is not None:
            parts.append(f"loss {p['loss']:.3f}")
    if epsilon is not None:
        parts.append(f"ε {epsilon:.2f}")
    return f"{job['state']}: " + ", ".join(parts)


def _r(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def job_progress(out: Console) -> Progress:
    """The watch line: times and counts first, never squeezed; the status takes what is
    left and is cut with an ellipsis on a narrow terminal."""
    return Progress(
        BarColumn(bar_width=16),
        MofNCompleteColumn(table_column=TableColumn(no_wrap=True)),
        TimeElapsedColumn(table_column=TableColumn(no_wrap=True, min_width=7)),
        TimeRemainingColumn(table_column=TableColumn(no_wrap=True, min_width=7)),
        TextColumn(
            "{task.fields[status]}",
            markup=False,
            table_column=TableColumn(no_wrap=True, overflow="ellipsis", ratio=1),
        ),
        console=out,
        transient=False,
        expand=True,
    )


def watch_job(
    project: str, job_id: str, *, interval: float = 1.0, out: Console | None = None
) -> dict[str, Any]:
    """Poll a job with a live progress bar until it ends; returns the final job."""
    with job_progress(out or console) as bar:
        task = bar.add_task("train", total=None, status="queued")
        while True:
            job = call("GET", f"{_jobs(project)}/{job_id}")
            p = job.get("progress") or {}
            if p.get("total_steps"):
                bar.update(task, total=p["total_steps"], completed=p.get("step", 0))
            bar.update(task, status=_describe(job))
            if job["state"] in TERMINAL:
                if job["state"] == "succeeded" and p.get("total_steps"):
                    bar.update(task, completed=p["total_steps"])
                return dict(job)
            time.sleep(interval)


_OPTIONAL_FIELDS = [
    (name, name)
    for name in (
        "strategy",
        "epochs",
        "batch_size",
        "physical_batch_size",
        "learning_rate",
        "head_learning_rate",
        "optimizer",
        "lr_schedule",
        "max_length",
        "max_grad_norm",
        "weight_decay",
        "dropout",
        "label_smoothing",
        "class_balance",
        "selection",
        "selection_share",
        "patience",
        "augment_multiplicity",
        "augment_token_dropout",
        "augment_span_deletion",
        "augment_word_order",
        "delta",
        "purpose",
        "model_name",
        "base_model",
    )
] + [
    ("epsilon", "target_epsilon"),
    ("init_from", "init_from_model_version_id"),
    ("distill_from", "distill_from_model_version_id"),
    ("temperature", "distill_temperature"),
]
"""`submit`'s options sent only when given (option name, request field): left out, the
auto recipe or the API chooses."""


@train_app.command("submit")
def submit(
    project: ProjectArg,
    dataset_version: Annotated[str, typer.Option(help="Dataset version id to train on.")],
    epsilon: Annotated[
        float | None, typer.Option(help="Target ε (required unless --non-private).")
    ] = None,
    delta: Annotated[float | None, typer.Option(help="δ (default: the dataset's).")] = None,
    base_model: Annotated[
        str | None,
        typer.Option(help="Allow-listed base model (default: minilm-l6, or the --init-from's)."),
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="full, bitfit, head or top-<k> (default: the API's).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training split.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Logical (expected) batch size.")] = None,
    physical_batch_size: Annotated[
        int | None,
        typer.Option(help="Examples per forward pass (bounds memory; not the DP batch)."),
    ] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    head_learning_rate: Annotated[
        float | None, typer.Option(help="Learning rate of the classification head.")
    ] = None,
    optimizer: Annotated[str | None, typer.Option(help="adamw or sgd (momentum 0.9).")] = None,
    lr_schedule: Annotated[str | None, typer.Option(help="constant or linear.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens kept per text.")] = None,
    max_grad_norm: Annotated[float | None, typer.Option(help="DP clipping norm C.")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay.")] = None,
    dropout: Annotated[
        float | None, typer.Option(help="Hidden dropout (default: the base model's).")
    ] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Label smoothing.")] = None,
    class_balance: ClassBalanceOption = None,
    selection: SelectionOption = None,
    selection_share: Annotated[float | None, typer.Option(help="Share of ε for selection.")] = None,
    patience: Annotated[int | None, typer.Option(help="Epochs to wait for a better F1.")] = None,
    augment_multiplicity: Annotated[
        int | None,
        typer.Option(
            help="K augmented copies per example, averaged before clipping (ε unchanged); 1: off."
        ),
    ] = None,
    augment_token_dropout: Annotated[
        float | None, typer.Option(help="Share of words dropped per copy.")
    ] = None,
    augment_span_deletion: Annotated[
        float | None, typer.Option(help="Share of words in one deleted span per copy.")
    ] = None,
    augment_word_order: Annotated[
        float | None, typer.Option(help="Chance of swapping neighbour words per copy.")
    ] = None,
    purpose: Annotated[
        str | None, typer.Option(help="Default: the dataset's only purpose.")
    ] = None,
    model_name: Annotated[str | None, typer.Option(help="Registry model name.")] = None,
    init_from: InitFromOption = None,
    distill_from: DistillFromOption = None,
    temperature: Annotated[
        float | None, typer.Option(help="Distillation softmax temperature (default 2).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (sampling, noise, initial head).")] = 0,
    non_private: Annotated[
        bool, typer.Option("--non-private", help="No DP (only for non-personal data).")
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Follow progress until it ends.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Submit a training job (policy admission and ε reservation happen now).

    Recipe options left out are chosen by the auto recipe from the dataset version's public
    facts (rows, label counts, ε, δ, base model); `train show` lists each value and why."""
    body: dict[str, Any] = {
        "dataset_version_id": dataset_version,
        "seed": seed,
        "private": not (non_private or distill_from is not None),
    }
    given = locals()
    body |= {field: given[name] for name, field in _OPTIONAL_FIELDS if given[name] is not None}
    _submitted(project, call("POST", _jobs(project), json=body), watch=watch, quiet=quiet)


def _submitted(project: str, job: dict[str, Any], *, watch: bool, quiet: bool) -> None:
    """What `submit` prints: the job and its recipe, then (--watch) its progress and end."""
    if not quiet:
        console.print(
            f"job [bold]{job['id']}[/] {job['state']} (ε reserved: {job.get('epsilon_reserved')})"
        )
        _print_recipe(job)
    if not watch:
        if quiet:
            print(job["id"])
        return
    final = watch_job(project, job["id"], out=err if quiet else console)
    _print_outcome(final, err if quiet else console)
    if quiet:
        print(final["model_version_id"])  # --watch --quiet: the new model version's id


def _print_recipe(job: dict[str, Any]) -> None:
    """One line per hyperparameter: its value and who chose it (the auto recipe's reasons
    are in `train show`)."""
    choices = (job.get("recipe") or {}).get("choices") or {}
    for name, choice in choices.items():
        console.print(f"  {name} = {choice.get('value')} ({choice.get('source')})", highlight=False)


def _print_outcome(job: dict[str, Any], out: Console | None = None) -> None:
    out = out or console
    if job["state"] == "succeeded":
        result = job.get("result") or {}
        metrics = result.get("metrics") or {}
        privacy = result.get("privacy") or {}
        out.print(
            f"[green]succeeded[/]: model version [bold]{job.get('model_version_id')}[/], "
            f"accuracy {_r(metrics.get('accuracy'))}, macro-F1 {_r(metrics.get('macro_f1'))}"
            + (f", ε {privacy['epsilon']:.3f}" if privacy.get("epsilon") is not None else ""),
            highlight=False,
        )
        return
    err.print(f"[red]{job['state']}[/]: {job.get('reason')}")
    raise typer.Exit(1)


@train_app.command("watch")
def watch_cmd(project: ProjectArg, job_id: str) -> None:
    """Follow a job's progress until it ends."""
    _print_outcome(watch_job(project, job_id))


@train_app.command("list")
def list_cmd(
    project: ProjectArg,
    state: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    after: AfterOption = None,
    limit: LimitOption = 100,
    all_pages: AllPagesOption = False,
    output: OutputOption = None,
) -> None:
    """Training jobs of a project, newest first (one page, or --all)."""
    params = {k: v for k, v in {"state": state, "after": after, "limit": limit}.items() if v}
    rows, cursor = call_pages(_jobs(project), params, all_pages=all_pages)
    columns = ["id", "state", "base_model", "target_epsilon", "model_version_id", "created_at"]
    emit(rows, output, columns=columns)
    next_page_hint(cursor)


@train_app.command("show")
def show(project: ProjectArg, job_id: str, output: OutputOption = None) -> None:
    """One job (state, progress, metrics, reason)."""
    emit(call("GET", f"{_jobs(project)}/{job_id}"), output)


HISTORY_COLUMNS: list[Column | str] = ["step", "epoch", "loss", "epsilon", "examples"]
EPOCH_COLUMNS: list[Column | str] = ["epoch", "steps", "last_step", "mean_loss", "epsilon"]
SELECTION_COLUMNS: list[Column | str] = [
    *EPOCH_COLUMNS,
    "validation_accuracy",
    "validation_macro_f1",
    "best",
]


@train_app.command("history")
def history(project: ProjectArg, job_id: str, output: OutputOption = None) -> None:
    """A job's training curve: loss and ε at evenly spaced steps (at most 1,000) and a
    summary per epoch, stored when the job ends."""
    data = call("GET", f"{_jobs(project)}/{job_id}/history")

    def render(h: dict[str, Any]) -> None:
        if not h["points"]:
            console.print(f"job {h['job_id']} ({h['state']}): no history yet", highlight=False)
            return
        title = f"job {h['job_id']} ({h['state']}): every {h['stride']} of {h['total_steps']} steps"
        console.print(table(h["points"], HISTORY_COLUMNS, title=title))
        selection = h.get("selection")
        columns = SELECTION_COLUMNS if selection else EPOCH_COLUMNS
        console.print(table(h["epochs"], columns, title="per epoch"))
        if h.get("epsilon") is not None:
            console.print(f"ε reported by the job: {human(h['epsilon'])}", highlight=False)
        if selection:
            console.print(
                f"kept epoch {selection['kept_epoch']} of {selection['epochs_run']} run"
                f"{' (stopped early)' if selection['stopped_early'] else ''}; ε training "
                f"{human(selection['epsilon_training'])} + selection "
                f"{human(selection['epsilon_selection'])} (validation releases)",
                highlight=False,
            )

    emit(data, output, render=render)


@train_app.command("cancel")
def cancel(project: ProjectArg, job_id: str) -> None:
    """Cancel a job (queued: ε released; running: stops within seconds, ε stays charged)."""
    job = call("POST", f"{_jobs(project)}/{job_id}:cancel")
    console.print(
        f"job {job['id']}: {job['state']}"
        + (" (stop requested)" if job["state"] == "running" else "")
    )


# --- models ----------------------------------------------------------------------------------


def _versions(project: str) -> str:
    return f"/v1/projects/{project}/model-versions"


VERSION_COLUMNS: list[Column | str] = [
    "number",
    "id",
    "state",
    Column("metrics.accuracy", "accuracy"),
    Column("metrics.macro_f1", "macro-F1"),
    Column("privacy.epsilon", "ε", lambda v: "non-private" if v is None else human(v)),
]


@models_app.command("list")
def models_list(project: ProjectArg, output: OutputOption = None) -> None:
    """Models of a project and their versions."""
    models = [
        call("GET", f"/v1/projects/{project}/models/{model['id']}")
        for model in call("GET", f"/v1/projects/{project}/models")
    ]

    def render(rows: list[dict[str, Any]]) -> None:
        for model in rows:
            title = f"{model['name']} ({model['id']})"
            console.print(table(model["versions"], VERSION_COLUMNS, title=title))
        if not rows:
            console.print("no models yet")

    emit(models, output, render=render)


@models_app.command("show")
def models_show(
    project: ProjectArg,
    version_id: str,
    card: Annotated[bool, typer.Option("--card", help="Print the model card only.")] = False,
    output: OutputOption = None,
) -> None:
    """A model version (metrics, DP guarantee, lineage) or its model card (Markdown with
    YAML front matter, printed as-is: valid at any terminal width)."""
    if card:
        sys.stdout.write(fetch_text(f"{_versions(project)}/{version_id}/card"))
        sys.stdout.flush()
        return
    emit(call("GET", f"{_versions(project)}/{version_id}"), output)


@models_app.command("approve")
def models_approve(project: ProjectArg, version_id: str) -> None:
    """Approve a candidate version for serving (not by whoever trained it)."""
    v = call("POST", f"{_versions(project)}/{version_id}:approve")
    console.print(f"{v['model_name']} v{v['number']} ({v['id']}): {v['state']}")


@models_app.command("resolve-erasure-flags")
def models_resolve_erasure_flags(
    project: ProjectArg, version_id: str, output: OutputOption = None
) -> None:
    """Clear a version's open erasure flags by keeping it under its DP guarantee, where
    the erasure policy allows it (else retrain); approving it is a later step."""
    path = f"{_versions(project)}/{version_id}:resolve-erasure-flags"
    flags = call("POST", path, json={"remedy": "keep_with_dp"})

    def render(data: dict[str, Any]) -> None:
        resolved = [f for f in data["erasure_flags"] if f.get("resolution")]
        console.print(
            f"{data['model_version_id']}: {len(resolved)} erasure flag(s) resolved "
            f"(keep_with_dp); state {data['state']}",
            highlight=False,
        )

    emit(flags, output, render=render)


@models_app.command("retire")
def models_retire(
    project: ProjectArg,
    version_id: str,
    reason: Annotated[str | None, typer.Option(help="Why (recorded).")] = None,
) -> None:
    """Retire a version: it stops serving."""
    v = call("POST", f"{_versions(project)}/{version_id}:retire", json={"reason": reason})
    console.print(f"{v['model_name']} v{v['number']} ({v['id']}): {v['state']}")


@models_app.command("resume")
def models_resume(
    project: ProjectArg,
    model: Annotated[str, typer.Argument(help="MODEL@VERSION (name or id; number or id).")],
    reason: Annotated[str, typer.Option(help="Why it may serve again (recorded).")] = "",
) -> None:
    """Let a suspended version serve again (an approver, after monitoring suspended it)."""
    name, _, version = model.partition("@")
    if not name or not version:
        raise typer.BadParameter("expected MODEL@VERSION", param_hint="MODEL")
    path = f"/v1/projects/{project}/models/{name}/versions/{version}:resume"
    v = call("POST", path, json={"reason": reason})
    console.print(f"{v['model_name']} v{v['number']} ({v['id']}): {v['state']}")


@models_app.command("export")
def models_export(
    project: ProjectArg,
    version_id: str,
    out: Annotated[Path, typer.Option(help="Where to write the Hugging Face tar archive.")],
) -> None:
    """Export an approved version in Hugging Face format (admin or grant; audited).

    The archive holds plaintext weights: keep it where your policy allows them."""
    total = download(f"{_versions(project)}/{version_id}/export", out)
    console.print(f"wrote {out} ({total} bytes)")
