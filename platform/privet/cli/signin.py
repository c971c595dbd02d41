"""`privet login`, `privet logout` and `privet whoami`: sign in once (an API key, or OIDC
with the device flow), see who the stored credentials sign in as, forget them.

Profiles and the order credentials are chosen in are `privet.cli.profiles`'s; this module
sits above it and above the HTTP client, so neither needs to import the commands.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from privet.cli import oidc_login
from privet.cli.client import call, call_with
from privet.cli.output import OutputOption, console, emit, human, table
from privet.cli.profiles import DEFAULT_URL, Credentials, config_path, credentials, load, save


def login(
    url: Annotated[
        str, typer.Option(envvar="PRIVET_URL", help="Server URL (or PRIVET_URL).")
    ] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="PRIVET_API_KEY",
            help="API key (asked for, hidden, when not given, not in PRIVET_API_KEY and "
            "the server offers no OIDC sign-in).",
            show_default=False,
        ),
    ] = None,
    oidc: Annotated[
        bool,
        typer.Option(
            "--oidc",
            help="Sign in at the server's OIDC provider in a browser (device flow); the "
            "default when the server offers it and no API key is given.",
        ),
    ] = False,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", help="OIDC client id (default: the server's)."),
    ] = None,
    scope: Annotated[
        str,
        typer.Option(
            "--scope", help="OIDC scopes to ask for; add offline_access if refresh needs it."
        ),
    ] = "openid",
    profile: Annotated[
        str, typer.Option("--profile", help="Profile name to store it under.")
    ] = "default",
    make_default: Annotated[
        bool,
        typer.Option("--default/--no-default", help="Make it the profile used by default."),
    ] = True,
) -> None:
    """Check an API key or an OIDC sign-in against the server, then store it as a profile
    (config file mode 0600) so later commands need no PRIVET_API_KEY."""
    url = url.rstrip("/")
    signed: tuple[dict[str, Any], dict[str, Any]] | None = None
    if oidc or api_key is None:  # --oidc wins over a PRIVET_API_KEY in the environment
        signed = oidc_login.device_login(url, client_id=client_id, scope=scope, required=oidc)
    if signed is None:
        key = api_key or typer.prompt("API key", hide_input=True)
        signed = ({"url": url, "api_key": key}, call_with(url, key, "GET", "/v1/me"))
    entry, me = signed
    data = load()
    data["profiles"][profile] = entry
    if make_default or not data.get("default"):
        data["default"] = profile
    path = save(data)
    expires = ((me.get("credential") or {}).get("expires_at") or "never")[:19].replace("T", " ")
    if entry.get("method") == "oidc":
        refresh = "refreshed automatically" if entry.get("refresh_token") else "no refresh"
        typer.echo(
            f"signed in to {url} as {me['name']} ({me['principal_id']}) with OIDC "
            f"({entry['oidc_issuer']}); token expires {expires} ({refresh}); "
            f"profile {profile!r} saved in {path}"
        )
        return
    typer.echo(
        f"signed in to {url} as {me['name']} ({me['principal_id']}); key expires "
        f"{expires}; profile {profile!r} saved in {path}"
    )


def logout(
    profile: Annotated[str, typer.Option("--profile", help="Profile to forget.")] = "default",
) -> None:
    """Forget a stored profile (the key itself stays valid: `privet api-keys revoke` it)."""
    data = load()
    if data["profiles"].pop(profile, None) is None:
        typer.echo(f"no profile {profile!r} in {config_path()}", err=True)
        raise typer.Exit(1)
    if data.get("default") == profile:
        data.pop("default")
    save(data)
    typer.echo(f"profile {profile!r} removed from {config_path()}")


def whoami(output: OutputOption = None) -> None:
    """Who the current credentials sign in as: principal, roles, key and its expiry."""
    me = call("GET", "/v1/me")
    creds = credentials()

    def render(data: dict[str, Any]) -> None:
        cred = data["credential"]
        console.print(
            f"[bold]{data['name']}[/] ({data['kind']} {data['principal_id']}) at {creds.url}",
            highlight=False,
        )
        scope = f", scoped to project {cred['project_id']}" if cred.get("project_id") else ""
        if cred["method"] == "oidc":
            console.print(
                f"credential: oidc token, expires {human(cred.get('expires_at'))} "
                f"({_renewal(creds)})",
                highlight=False,
            )
        else:
            console.print(
                f"credential: {cred['method']} {cred.get('name') or ''} ({cred.get('id')})"
                f"{scope}, expires {human(cred.get('expires_at'))}",
                highlight=False,
            )
        rows = [
            {"role": r["role"], "project": r["project_id"] or "(platform)"} for r in data["roles"]
        ]
        console.print(table(rows, ["role", "project"]) if rows else "no roles")

    emit(me, output, render=render)


def _renewal(creds: Credentials) -> str:
    """How an OIDC profile's token is renewed, in words."""
    profile = load()["profiles"].get(creds.profile or "", {})
    if profile.get("refresh_token"):
        return "refreshed automatically with the stored refresh token"
    return "no refresh token: run `privet login` again when it expires"
