"""Sign in once: `privet login` stores a profile (server URL + API key, or OIDC tokens) in
the user's config file, `privet whoami` shows who it signs in as, `privet logout` forgets it.

The file is `$XDG_CONFIG_HOME/privet/config.toml` (default `~/.config/privet/`), written
with mode 0600 in a 0700 directory, since it holds API keys and tokens. Which credentials
a client command uses, field by field (URL and key separately):

1. the profile named by `privet --profile NAME` or PRIVET_PROFILE;
2. else PRIVET_URL / PRIVET_API_KEY;
3. else the default profile (the one `privet login` wrote last, unless told otherwise);
4. else http://127.0.0.1:8000 and no key.

A profile signed in with OIDC (`privet.cli.oidc_login`, the device authorization grant)
holds an access token, its expiry and, when the provider gave one, a refresh token: the
access token is the bearer, refreshed before it expires.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from privet.cli.output import OutputOption, console, emit, human, table

DEFAULT_URL = "http://127.0.0.1:8000"
#: What a profile may hold, in the order written (absent or empty fields are left out).
FIELDS = (
    "url",
    "api_key",
    "method",
    "access_token",
    "refresh_token",
    "expires_at",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_token_endpoint",
)
_selected: str | None = None  # set by `privet --profile`


def select(name: str | None) -> None:
    global _selected
    _selected = name


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "privet" / "config.toml"


def load() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {"profiles": {}}
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    data.setdefault("profiles", {})
    return data


def save(data: dict[str, Any]) -> Path:
    """Write the config atomically, readable by its owner only."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = []
    if data.get("default"):
        lines.append(f"default = {json.dumps(data['default'])}")
    for name, profile in sorted(data.get("profiles", {}).items()):
        lines.append(f"\n[profiles.{json.dumps(name)}]")
        for key in FIELDS:
            if profile.get(key):
                lines.append(f"{key} = {json.dumps(profile[key])}")  # a JSON string is TOML
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines).lstrip("\n") + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Credentials:
    url: str
    api_key: str | None  # the bearer: an API key, or a profile's OIDC access token
    source: str  # where the key came from, for error messages
    profile: str | None = None  # the profile the bearer came from (None: environment)
    method: str = "api_key"  # api_key | oidc


def _bearer(profile: dict[str, Any]) -> tuple[str | None, str]:
    if profile.get("method") == "oidc":
        return profile.get("access_token"), "oidc"
    return profile.get("api_key"), "api_key"


def credentials() -> Credentials:
    """The URL and key a client command uses (order in the module docstring)."""
    explicit = _selected or os.environ.get("PRIVET_PROFILE") or None
    data = load()
    profiles: dict[str, Any] = data["profiles"]
    if explicit is not None:
        if explicit not in profiles:
            known = ", ".join(sorted(profiles)) or "none yet"
            typer.echo(
                f"error: no profile {explicit!r} in {config_path()} (profiles: {known}); "
                f"create it with `privet login --profile {explicit}`",
                err=True,
            )
            raise typer.Exit(2)
        chosen = profiles[explicit]
        token, method = _bearer(chosen)
        return Credentials(
            chosen.get("url") or DEFAULT_URL, token, f"profile {explicit!r}", explicit, method
        )
    default_name = data.get("default") or "default"
    fallback = profiles.get(default_name, {})
    url = os.environ.get("PRIVET_URL") or fallback.get("url") or DEFAULT_URL
    env_key = os.environ.get("PRIVET_API_KEY") or None
    if env_key:
        return Credentials(url, env_key, "PRIVET_API_KEY")
    token, method = _bearer(fallback)
    return Credentials(
        url, token, "the default profile", default_name if fallback else None, method
    )


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
    from privet.cli import oidc_login
    from privet.cli.client import call_with

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
    from privet.cli.client import call

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
