"""Sign in once: `privet login` stores a profile (server URL + API key) in the user's
config file, `privet whoami` shows who it signs in as, `privet logout` forgets it.

The file is `$XDG_CONFIG_HOME/privet/config.toml` (default `~/.config/privet/`), written
with mode 0600 in a 0700 directory, since it holds API keys. Which credentials a client
command uses, field by field (URL and key separately):

1. the profile named by `privet --profile NAME` or PRIVET_PROFILE;
2. else PRIVET_URL / PRIVET_API_KEY;
3. else the default profile (the one `privet login` wrote last, unless told otherwise);
4. else http://127.0.0.1:8000 and no key.
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
        for key in ("url", "api_key"):
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
    api_key: str | None
    source: str  # where the key came from, for error messages


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
        return Credentials(
            chosen.get("url") or DEFAULT_URL, chosen.get("api_key"), f"profile {explicit!r}"
        )
    fallback = profiles.get(data.get("default") or "default", {})
    env_key = os.environ.get("PRIVET_API_KEY") or None
    return Credentials(
        os.environ.get("PRIVET_URL") or fallback.get("url") or DEFAULT_URL,
        env_key or fallback.get("api_key"),
        "PRIVET_API_KEY" if env_key else "the default profile",
    )


def login(
    url: Annotated[
        str, typer.Option(envvar="PRIVET_URL", help="Server URL (or PRIVET_URL).")
    ] = DEFAULT_URL,
    api_key: Annotated[
        str,
        typer.Option(
            envvar="PRIVET_API_KEY",
            help="API key (asked for, hidden, when not given or in PRIVET_API_KEY).",
            prompt="API key",
            hide_input=True,
        ),
    ] = ...,  # type: ignore[assignment]
    profile: Annotated[
        str, typer.Option("--profile", help="Profile name to store it under.")
    ] = "default",
    make_default: Annotated[
        bool,
        typer.Option("--default/--no-default", help="Make it the profile used by default."),
    ] = True,
) -> None:
    """Check an API key against the server, then store URL and key as a profile
    (config file mode 0600) so later commands need no PRIVET_API_KEY."""
    from privet.cli.client import call_with

    me = call_with(url, api_key, "GET", "/v1/me")
    data = load()
    data["profiles"][profile] = {"url": url.rstrip("/"), "api_key": api_key}
    if make_default or not data.get("default"):
        data["default"] = profile
    path = save(data)
    expires = (me.get("credential") or {}).get("expires_at") or "never"
    typer.echo(
        f"signed in to {url} as {me['name']} ({me['principal_id']}); key expires "
        f"{expires[:19].replace('T', ' ')}; profile {profile!r} saved in {path}"
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

    def render(data: dict[str, Any]) -> None:
        cred = data["credential"]
        console.print(
            f"[bold]{data['name']}[/] ({data['kind']} {data['principal_id']}) at "
            f"{credentials().url}",
            highlight=False,
        )
        scope = f", scoped to project {cred['project_id']}" if cred.get("project_id") else ""
        console.print(
            f"credential: {cred['method']} {cred.get('name') or ''} ({cred.get('id')}){scope}, "
            f"expires {human(cred.get('expires_at'))}",
            highlight=False,
        )
        rows = [
            {"role": r["role"], "project": r["project_id"] or "(platform)"} for r in data["roles"]
        ]
        console.print(table(rows, ["role", "project"]) if rows else "no roles")

    emit(me, output, render=render)
