"""Profiles: what `privet login` stores (server URL + API key, or OIDC tokens) in the
user's config file, and which credentials a client command uses. The commands that sign
in and out are `privet.cli.signin`'s.

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
from typing import Any

import typer

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
