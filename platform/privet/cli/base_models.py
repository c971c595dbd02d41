"""`privet base-models add|list|show|retire`: the base-model registry over HTTP (client).

`add` pins a local Hugging Face folder on the server's disk (under the server's
PRIVET_BASE_MODELS_ROOTS) as a base model jobs may fine-tune: platform admins only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from privet.cli.client import call, call_pages
from privet.cli.output import (
    AfterOption,
    AllPagesOption,
    LimitOption,
    OutputOption,
    emit,
    group,
    next_page_hint,
)

base_models_app = group("Base models that may be fine-tuned: add (platform admin), list, retire.")

COLUMNS = ["name", "state", "model_type", "pooling", "max_positions", "vocab_size", "license"]
"""A free-text licence shows as an empty `license` here; `show` prints its text."""


@base_models_app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="The folder, as the server sees it.")],
    name: Annotated[str, typer.Option(help="Unique name jobs use as base_model.")],
    license: Annotated[
        str | None,
        typer.Option(
            help="SPDX licence id or expression, e.g. Apache-2.0 (default: the model card's, "
            "else a LICENSE file's text)."
        ),
    ] = None,
    licence_text: Annotated[
        str | None,
        typer.Option(help="The licence's own words, for a licence with no SPDX id."),
    ] = None,
    pooling: Annotated[
        str | None,
        typer.Option(help="cls or mean (default: a sentence-transformers config, else cls)."),
    ] = None,
    description: Annotated[str, typer.Option(help="What it is.")] = "",
    output: OutputOption = None,
) -> None:
    """Register a folder: digests of every weight and tokenizer file, family, vocabulary."""
    body: dict[str, Any] = {"name": name, "path": str(path.absolute()), "description": description}
    if license is not None:
        body["license"] = license
    if licence_text is not None:
        body["licence_text"] = licence_text
    if pooling is not None:
        body["pooling"] = pooling
    emit(call("POST", "/v1/base-models", json=body), output)


@base_models_app.command("list")
def list_(
    after: AfterOption = None,
    limit: LimitOption = 100,
    all_pages: AllPagesOption = False,
    output: OutputOption = None,
) -> None:
    """The registered base models, active and retired, by name (one page, or --all)."""
    params: dict[str, Any] = {"limit": limit, **({"after": after} if after else {})}
    rows, cursor = call_pages("/v1/base-models", params, all_pages=all_pages)
    emit(rows, output, columns=COLUMNS)
    next_page_hint(cursor)


@base_models_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Base model name.")], output: OutputOption = None
) -> None:
    """One base model: digests, vocabulary coverage (per mille per script), licence."""
    emit(call("GET", f"/v1/base-models/{name}"), output)


@base_models_app.command("retire")
def retire(
    name: Annotated[str, typer.Argument(help="Base model name.")], output: OutputOption = None
) -> None:
    """Admit no new job on it; versions trained on it keep serving."""
    emit(call("POST", f"/v1/base-models/{name}:retire"), output)
