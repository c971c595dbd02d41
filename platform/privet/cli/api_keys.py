"""`privet api-keys create|list|revoke`: API keys over HTTP (client commands).

Not to be confused with `privet keys`, the server-side master keys. A key is printed once
at creation and stored only as a digest; mint your own, or, as a project admin, one for a
service account of your project (`--principal`, with `--project`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from privet.cli.client import call
from privet.cli.output import OutputOption, QuietOption, console, emit, group

api_keys_app = group("API keys: create (printed once), list your own, revoke.")

COLUMNS = ["id", "name", "principal_id", "project_id", "created_at", "expires_at", "revoked_at"]


@api_keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="What the key is for (e.g. the host using it).")],
    principal: Annotated[
        str | None,
        typer.Option(help="Mint for this service account (default: yourself)."),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Scope the key to one project (its roles there only).")
    ] = None,
    ttl_days: Annotated[
        int | None, typer.Option(help="Days until it expires (default: the server's).")
    ] = None,
    output: OutputOption = None,
    quiet: QuietOption = False,
) -> None:
    """Mint an API key; it is printed once (with --quiet: the key alone)."""
    body: dict[str, Any] = {"name": name}
    for field, value in (
        ("principal_id", principal),
        ("project_id", project),
        ("ttl_days", ttl_days),
    ):
        if value is not None:
            body[field] = value
    created = call("POST", "/v1/api-keys", json=body)

    def render(data: dict[str, Any]) -> None:
        scope = f" scoped to {data['project_id']}" if data.get("project_id") else ""
        console.print(
            f"API key {data['id']} ({data['name']}) for {data['principal_id']}{scope}, "
            f"expires {str(data['expires_at'])[:19].replace('T', ' ')}; shown once:",
            highlight=False,
        )
        print(data["key"])

    emit(created, output, render=render, quiet=created["key"] if quiet else None)


@api_keys_app.command("list")
def list_(output: OutputOption = None) -> None:
    """Your own API keys (never their secrets)."""
    emit(call("GET", "/v1/api-keys"), output, columns=COLUMNS)


@api_keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="Key id (`api-keys list`), not the secret.")],
    output: OutputOption = None,
) -> None:
    """Revoke a key at once (yours, or a member's key of a project you administer)."""
    emit(call("DELETE", f"/v1/api-keys/{key_id}"), output)
