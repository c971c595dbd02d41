"""`privet datasets upload|list|show|sweep`.

upload, list and show are client commands (PRIVET_URL, PRIVET_API_KEY); upload streams
the file with a progress bar and never loads it whole. sweep runs server-side against the
database and blob store of PRIVET_HOME / PRIVET_DATABASE_URL, like `privet keys`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from privet.cli.client import call, download
from privet.cli.output import Output, OutputOption, QuietOption, emit, group

datasets_app = group(
    "Datasets: upload (streamed, encrypted on arrival), list, show, export, erase "
    "subjects, retention sweep."
)
_console = Console()
_errors = Console(stderr=True)
CHUNK = 256 * 1024


def _stream(path: Path, head: bytes, tail: bytes, progress: Progress) -> Iterator[bytes]:
    task = progress.add_task(f"uploading {path.name}", total=path.stat().st_size)
    yield head
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            progress.update(task, advance=len(chunk))
            yield chunk
    yield tail
    progress.update(task, description=f"validating {path.name}")


PurposeOption = Annotated[
    list[str], typer.Option(help="Purpose the data may be used for (repeatable).")
]
LegalBasisOption = Annotated[
    str,
    typer.Option(
        help="GDPR Art. 6 basis: consent, contract, legal_obligation, vital_interests, "
        "public_task, legitimate_interests."
    ),
]
PersonalDataOption = Annotated[
    bool,
    typer.Option(
        "--personal-data/--no-personal-data", help="Whether the file holds personal data."
    ),
]
SubjectIdColumnOption = Annotated[
    str | None, typer.Option(help="Column of data-subject ids (needed for personal data).")
]
CategoryOption = Annotated[
    list[str] | None, typer.Option(help="Data category, e.g. financial (repeatable).")
]
DatasetOption = Annotated[
    str | None, typer.Option(help="Existing dataset id: upload a new version of it.")
]
FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="csv, tsv, jsonl or parquet (default: from name)."),
]


def multipart_frame(filename: str, decl: dict[str, Any]) -> tuple[str, bytes, bytes]:
    """The boundary and the bytes around an uploaded file: the declarations part comes
    first (the server reads it before the file), then the file part's headers; the file
    streams between head and tail."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="declarations"\r\n'
        "Content-Type: application/json\r\n\r\n"
        f"{json.dumps(decl)}\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return boundary, head, tail


def _post_file(path: str, file: Path, decl: dict[str, Any]) -> Any:
    """POST FILE with its declarations, streamed with a progress bar on stderr."""
    boundary, head, tail = multipart_frame(file.name, decl)
    length = len(head) + file.stat().st_size + len(tail)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_errors,
        transient=True,
    ) as progress:
        return call(
            "POST",
            path,
            content=_stream(file, head, tail, progress),
            headers={
                "content-type": f"multipart/form-data; boundary={boundary}",
                "content-length": str(length),
            },
        )


def _show_uploaded(
    result: dict[str, Any], *, as_json: bool, output: Output | None, quiet: bool
) -> None:
    """Warnings go to stderr, so --json and --quiet output stays machine-readable."""
    for warning in result.get("warnings", []):
        _errors.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if quiet or as_json or output is not None:
        emit(result, Output.json if as_json else output, quiet=result["id"] if quiet else None)
        return
    _console.print(
        f"[green]registered[/] dataset {result['dataset_id']} ({result['dataset_name']}) "
        f"version {result['number']} = {result['id']}: {result['row_count']} rows, "
        f"{_labels(result)}, digest {result['digest']}",
        highlight=False,
    )


def _labels(result: dict[str, Any]) -> str:
    if (result.get("declarations") or {}).get("unlabelled"):
        return "unlabelled (distillation input only)"
    return f"labels {result['label_counts']}"


@datasets_app.command()
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    project: Annotated[str, typer.Option(help="Project id.")],
    text_column: Annotated[str, typer.Option(help="Column holding the text.")],
    purpose: PurposeOption,
    legal_basis: LegalBasisOption,
    retention_days: Annotated[int, typer.Option(help="Days until the version is shredded.")],
    personal_data: PersonalDataOption,
    label_column: Annotated[
        str | None, typer.Option(help="Column holding the label (required unless --unlabelled).")
    ] = None,
    unlabelled: Annotated[
        bool,
        typer.Option(
            help="The file has no label column: non-personal texts, usable only as "
            "distillation input (train submit --distill-from)."
        ),
    ] = False,
    subject_id_column: SubjectIdColumnOption = None,
    subject_ids_unique: Annotated[
        bool, typer.Option(help="Refuse the upload if a subject id repeats.")
    ] = False,
    category: CategoryOption = None,
    name: Annotated[str | None, typer.Option(help="Dataset name (default: file name).")] = None,
    dataset: DatasetOption = None,
    fmt: FormatOption = None,
    epsilon: Annotated[float | None, typer.Option(help="Privacy budget: total ε.")] = None,
    delta: Annotated[float | None, typer.Option(help="Privacy budget: δ.")] = None,
    split_seed: Annotated[int, typer.Option(help="Seed of the train/validation/test split.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Upload FILE as a new dataset (or, with --dataset, a new version of one)."""
    budget: dict[str, Any] = {}
    if epsilon is not None:
        budget["epsilon_total"] = epsilon
    if delta is not None:
        budget["delta"] = delta
    decl: dict[str, Any] = {
        "text_column": text_column,
        "label_column": label_column,
        "unlabelled": unlabelled,
        "subject_id_column": subject_id_column,
        "subject_ids_unique": subject_ids_unique,
        "contains_personal_data": personal_data,
        "data_categories": category or [],
        "purposes": purpose,
        "legal_basis": legal_basis,
        "retention_days": retention_days,
        "privacy_budget": budget,
        "split": {"seed": split_seed},
    }
    if dataset is None and name is not None:
        decl["name"] = name
    if fmt is not None:
        decl["format"] = fmt
    path = f"/v1/projects/{project}/datasets"
    if dataset is not None:
        path += f"/{dataset}/versions"
    result = _post_file(path, file, decl)
    _show_uploaded(result, as_json=as_json, output=output, quiet=quiet)


@datasets_app.command("list")
def list_(
    project: Annotated[str, typer.Option(help="Project id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    output: OutputOption = None,
) -> None:
    """The project's datasets."""
    rows = call("GET", f"/v1/projects/{project}/datasets")
    emit(
        rows,
        Output.json if as_json else output,
        columns=["id", "name", "latest_version", "created_at"],
    )


@datasets_app.command()
def show(
    dataset: Annotated[str, typer.Argument(help="Dataset id.")],
    project: Annotated[str, typer.Option(help="Project id.")],
    version: Annotated[
        str | None, typer.Option(help="A version id or number: show it in full.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    output: OutputOption = None,
) -> None:
    """A dataset and its versions (metadata and statistics only; never rows)."""
    chosen = Output.json if as_json else output
    if version is not None:
        data = call("GET", f"/v1/projects/{project}/datasets/{dataset}/versions/{version}")
        emit(data, chosen)
        return
    emit(call("GET", f"/v1/projects/{project}/datasets/{dataset}"), chosen, render=_render_dataset)


def _render_dataset(data: dict[str, Any]) -> None:
    _console.print(f"dataset {data['id']} ({data['name']}) in project {data['project_id']}")
    table = Table("#", "id", "state", "rows", "labels", "format", "digest", "retention until")
    for v in data["versions"]:
        table.add_row(
            str(v["number"]),
            v["id"],
            v["state"] + (f" ({v['shred_reason']})" if v["shred_reason"] else ""),
            str(v["row_count"]),
            json.dumps(v["label_counts"]),
            v["format"],
            v["digest"][:19] + "…",
            v["retention_until"],
        )
    _console.print(table)


@datasets_app.command()
def sweep(
    project: Annotated[
        str | None, typer.Option(help="Only this project (default: every project).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    remote: Annotated[
        bool,
        typer.Option("--remote", help="Ask the signed-in server to sweep --project (client)."),
    ] = False,
) -> None:
    """Shred every dataset version past its retention period (server-side: run it where
    PRIVET_HOME / PRIVET_DATABASE_URL point, e.g. from cron). One audit event each."""
    if remote:
        if project is None:
            raise typer.BadParameter("--remote sweeps one project: give --project")
        emit(call("POST", f"/v1/projects/{project}/datasets:sweep"), Output.json)
        return
    from privet.config import get_settings
    from privet.crypto import LocalBlobStore
    from privet.datasets import retention, upload
    from privet.db import get_engine, session_scope
    from privet.kit.errors import PrivetError

    settings = get_settings()
    try:
        upload.clean_at_start(settings)
        store = LocalBlobStore(settings.blobs_dir)
        with (
            session_scope(get_engine(settings.effective_database_url)) as session,
            Progress(console=_errors, transient=True) as progress,
        ):
            task = progress.add_task("shredding expired versions", total=None)

            def tick(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            result = retention.sweep_retention(
                session, store=store, project_id=project, progress=tick
            )
    except PrivetError as exc:
        _errors.print(f"[bold red]error:[/] {exc.detail}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    _console.print(
        f"[green]ok[/] {len(result.shredded_versions)} version(s) shredded, "
        f"{result.orphan_blobs_removed} orphan blob(s) removed",
        highlight=False,
    )
    for version_id in result.shredded_versions:
        _console.print(f"  shredded {version_id}", highlight=False)
    for usage in result.affected:
        _console.print(
            f"  [yellow]affected[/] {usage.used_by_kind} {usage.used_by_id} "
            f"(used {usage.dataset_version_id})",
            highlight=False,
        )


@datasets_app.command()
def export(
    dataset: Annotated[str, typer.Argument(help="Dataset id.")],
    project: Annotated[str, typer.Option(help="Project id.")],
    version: Annotated[str, typer.Option(help="Version id or number.")],
    out: Annotated[Path, typer.Option(help="JSON Lines file to write (plaintext rows).")],
) -> None:
    """Export a version's rows as JSON Lines (data stewards; audited). The file holds
    personal data in plaintext: keep it where your policy allows."""
    total = download(f"/v1/projects/{project}/datasets/{dataset}/versions/{version}/export", out)
    _console.print(f"wrote {out} ({total} bytes)", highlight=False)


@datasets_app.command("erase-subjects")
def erase_subjects(
    dataset: Annotated[str, typer.Argument(help="Dataset id.")],
    project: Annotated[str, typer.Option(help="Project id.")],
    subject_id: Annotated[list[str], typer.Option(help="Data-subject id to erase (repeatable).")],
    output: OutputOption = None,
) -> None:
    """Erase data subjects from one dataset (a new version without their rows; the old
    ones are shredded). Across every project, use `privet dsr submit --type erasure`."""
    body = {"subject_ids": subject_id}
    emit(
        call("POST", f"/v1/projects/{project}/datasets/{dataset}:erase-subjects", json=body), output
    )
