"""`privet predict`: classify texts with a served model version (client command).

    privet predict --project P --model risk --purpose credit_scoring "text one" "text two"
    privet predict --project P --model risk@3 --purpose credit_scoring --file claims.jsonl

``--file`` reads one text per line, or JSON lines (``.jsonl``) with ``text`` and optional
``subject_id`` and ``purpose``; it is sent in batches with a progress bar, and the results
are written as JSON lines (to ``--output`` or stdout). Uses PRIVET_URL and PRIVET_API_KEY.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from privet.cli.client import call

_console = Console()
_errors = Console(stderr=True)


def predict_path(project: str, model: str) -> str:
    """``MODEL`` → the serving version's route; ``MODEL@VERSION`` → that version's."""
    name, sep, version = model.partition("@")
    if not name or (sep and not version):
        raise typer.BadParameter("expected MODEL or MODEL@VERSION", param_hint="--model")
    if sep:
        return f"/v1/projects/{project}/models/{name}/versions/{version}:predict"
    return f"/v1/projects/{project}/models/{name}:predict"


def _read_items(path: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    as_json = path.suffix.lower() in (".jsonl", ".ndjson")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if not as_json:
                items.append({"text": line})
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise typer.BadParameter(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise typer.BadParameter(f'{path}:{number}: expected {{"text": ...}}')
            items.append({k: record[k] for k in ("text", "subject_id", "purpose") if k in record})
    return items


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _by_purpose(
    items: list[dict[str, Any]], purpose: str | None
) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Items grouped by purpose (a request serves one), with their input positions."""
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for index, item in enumerate(items):
        item_purpose = item.get("purpose") or purpose
        if not item_purpose:
            raise typer.BadParameter("give --purpose (or a purpose per JSON line)")
        groups.setdefault(item_purpose, []).append((index, {**item, "purpose": item_purpose}))
    return groups


def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    project: Annotated[str, typer.Option(help="Project id.")] = ...,  # type: ignore[assignment]
    model: Annotated[
        str, typer.Option(help="MODEL (its serving version) or MODEL@VERSION (number or id).")
    ] = ...,  # type: ignore[assignment]
    purpose: Annotated[
        str | None, typer.Option(help="Why the prediction is made (policy checks it).")
    ] = None,
    subject_id: Annotated[
        str | None, typer.Option(help="Data subject of the texts (logged pseudonymised).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="One text per line, or .jsonl with 'text'."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write results as JSON lines here (default stdout).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1024, help="Texts per request.")] = 32,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, not a table.")] = False,
) -> None:
    """Classify texts with an approved model version; every prediction is audited."""
    items: list[dict[str, Any]] = [{"text": t} for t in texts or []]
    if file is not None:
        items += _read_items(file)
    if not items:
        raise typer.BadParameter("give texts as arguments or --file")
    if subject_id is not None:
        items = [{**item, "subject_id": item.get("subject_id", subject_id)} for item in items]
    path = predict_path(project, model)
    placed: list[dict[str, Any] | None] = [None] * len(items)
    groups = _by_purpose(items, purpose)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_errors,
        transient=True,
        disable=file is None,
    ) as progress:
        task = progress.add_task("predicting", total=len(items))
        for group_purpose, group in groups.items():
            for batch in _batches(group, batch_size):
                body = {"items": [item for _, item in batch], "purpose": group_purpose}
                response = call("POST", path, json=body)
                for (index, _), result in zip(batch, response["predictions"], strict=True):
                    placed[index] = result
                progress.advance(task, len(batch))
    results = [r for r in placed if r is not None]
    if output is not None or as_json or file is not None:
        sink: TextIO = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            for result in results:
                sink.write(json.dumps(result) + "\n")
        finally:
            if output is not None:
                sink.close()
        if output is not None:
            _errors.print(f"{len(results)} predictions written to {output}")
        return
    table = Table("prediction", "label", "score", "version")
    for result in results:
        table.add_row(
            result["prediction_id"],
            result["label"],
            f"{result['score']:.3f}",
            f"{result['model_version']} ({result['model_version_id']})",
        )
    _console.print(table)
