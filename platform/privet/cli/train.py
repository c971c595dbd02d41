"""`privet train ...` (training jobs) and `privet models ...` (the model registry).

Client commands: they talk to a running server (PRIVET_URL, PRIVET_API_KEY).
"""

from __future__ import annotations

import json
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

from privet.cli.client import call, client, download, err

train_app = typer.Typer(
    help="Training jobs (client: needs PRIVET_URL, PRIVET_API_KEY).", no_args_is_help=True
)
models_app = typer.Typer(
    help="The model registry (client: needs PRIVET_URL, PRIVET_API_KEY).", no_args_is_help=True
)
console = Console()

TERMINAL = {"succeeded", "failed", "cancelled"}
ProjectArg = Annotated[str, typer.Argument(help="Project id.")]


def _jobs(project: str) -> str:
    return f"/v1/projects/{project}/training-jobs"


def _describe(job: dict[str, Any]) -> str:
    p = job.get("progress") or {}
    parts = [f"epoch {p.get('epoch', '-')}/{p.get('epochs', '-')}"]
    if p.get("loss") is not None:
        parts.append(f"loss {p['loss']:.4f}")
    if p.get("epsilon") is not None:
        parts.append(f"ε {p['epsilon']:.3f}")
    return f"[{job['state']}] " + ", ".join(parts)


def watch_job(project: str, job_id: str, *, interval: float = 1.0) -> dict[str, Any]:
    """Poll a job with a live progress bar until it ends; returns the final job."""
    with Progress(
        TextColumn("[bold]{task.fields[job]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("train", total=None, job=job_id, status="[queued]")
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


@train_app.command("submit")
def submit(
    project: ProjectArg,
    dataset_version: Annotated[str, typer.Option(help="Dataset version id to train on.")],
    epsilon: Annotated[
        float | None, typer.Option(help="Target ε (required unless --non-private).")
    ] = None,
    delta: Annotated[float | None, typer.Option(help="δ (default: the dataset's).")] = None,
    base_model: Annotated[str, typer.Option(help="Allow-listed base model.")] = "minilm-l6",
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
    purpose: Annotated[
        str | None, typer.Option(help="Default: the dataset's only purpose.")
    ] = None,
    model_name: Annotated[str | None, typer.Option(help="Registry model name.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (sampling, noise, initial head).")] = 0,
    non_private: Annotated[
        bool, typer.Option("--non-private", help="No DP (only for non-personal data).")
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Follow progress until it ends.")] = False,
) -> None:
    """Submit a training job (policy admission and ε reservation happen now).

    Recipe options left out take the API's defaults (GET /openapi.json lists them)."""
    body: dict[str, Any] = {
        "dataset_version_id": dataset_version,
        "base_model": base_model,
        "seed": seed,
        "private": not non_private,
    }
    for key, value in (
        ("strategy", strategy),
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("physical_batch_size", physical_batch_size),
        ("learning_rate", learning_rate),
        ("head_learning_rate", head_learning_rate),
        ("optimizer", optimizer),
        ("lr_schedule", lr_schedule),
        ("max_length", max_length),
        ("target_epsilon", epsilon),
        ("delta", delta),
        ("purpose", purpose),
        ("model_name", model_name),
    ):
        if value is not None:
            body[key] = value
    job = call("POST", _jobs(project), json=body)
    console.print(
        f"job [bold]{job['id']}[/] {job['state']} (ε reserved: {job.get('epsilon_reserved')})"
    )
    if not watch:
        return
    final = watch_job(project, job["id"])
    _print_outcome(final)


def _print_outcome(job: dict[str, Any]) -> None:
    if job["state"] == "succeeded":
        result = job.get("result") or {}
        metrics = result.get("metrics") or {}
        privacy = result.get("privacy") or {}
        console.print(
            f"[green]succeeded[/]: model version [bold]{job.get('model_version_id')}[/], "
            f"accuracy {metrics.get('accuracy')}, macro-F1 {metrics.get('macro_f1')}"
            + (f", ε {privacy.get('epsilon'):.4f}" if privacy.get("epsilon") is not None else "")
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
) -> None:
    """Training jobs of a project, newest first."""
    params = {"state": state} if state else None
    jobs = call("GET", _jobs(project), params=params)
    for job in jobs:
        console.print(
            f"{job['id']}  {job['state']:<10} {job['base_model']:<12} "
            f"ε={job.get('target_epsilon')}  {job['created_at']}"
        )


@train_app.command("show")
def show(project: ProjectArg, job_id: str) -> None:
    """One job as JSON (state, progress, metrics, reason)."""
    console.print_json(json.dumps(call("GET", f"{_jobs(project)}/{job_id}")))


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


@models_app.command("list")
def models_list(project: ProjectArg) -> None:
    """Models of a project and their versions."""
    for model in call("GET", f"/v1/projects/{project}/models"):
        detail = call("GET", f"/v1/projects/{project}/models/{model['id']}")
        console.print(f"[bold]{model['name']}[/] ({model['id']})")
        for v in detail["versions"]:
            eps = (v.get("privacy") or {}).get("epsilon")
            console.print(
                f"  v{v['number']}  {v['id']}  {v['state']:<9}  "
                f"accuracy={v['metrics'].get('accuracy')}  "
                + (f"ε={eps:.4f}" if eps is not None else "non-private")
            )


@models_app.command("show")
def models_show(
    project: ProjectArg,
    version_id: str,
    card: Annotated[bool, typer.Option("--card", help="Print the model card only.")] = False,
) -> None:
    """A model version (metrics, DP guarantee, lineage) or its model card."""
    if card:
        with client() as http:
            response = http.get(f"{_versions(project)}/{version_id}/card")
        if response.status_code >= 400:
            call("GET", f"{_versions(project)}/{version_id}/card")  # prints the problem
        console.print(response.text, markup=False, highlight=False)
        return
    console.print_json(json.dumps(call("GET", f"{_versions(project)}/{version_id}")))


@models_app.command("approve")
def models_approve(project: ProjectArg, version_id: str) -> None:
    """Approve a candidate version for serving (not by whoever trained it)."""
    v = call("POST", f"{_versions(project)}/{version_id}:approve")
    console.print(f"{v['model_name']} v{v['number']} ({v['id']}): {v['state']}")


@models_app.command("retire")
def models_retire(
    project: ProjectArg,
    version_id: str,
    reason: Annotated[str | None, typer.Option(help="Why (recorded).")] = None,
) -> None:
    """Retire a version: it stops serving."""
    v = call("POST", f"{_versions(project)}/{version_id}:retire", json={"reason": reason})
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
