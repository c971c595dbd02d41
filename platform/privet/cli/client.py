"""The one HTTP client of the CLI commands that talk to a running server (a `privet login`
profile, or PRIVET_URL and PRIVET_API_KEY), turning problem responses into readable
errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
from rich.markup import escape

from privet.cli import oidc_tokens, profiles
from privet.cli.output import err


def client() -> httpx.Client:
    """An HTTP client for the signed-in server (see `privet.cli.profiles` for the order);
    an expired OIDC access token is refreshed first."""
    creds = profiles.credentials()
    if not creds.api_key:
        err.print(
            "[red]error:[/] no API key: run `privet login` once, or set PRIVET_API_KEY to an "
            "API key (privet serve prints the first admin key; `privet keys create-admin` "
            "mints another)"
        )
        raise typer.Exit(2)
    token = creds.api_key
    if creds.method == "oidc" and creds.profile is not None:
        token = oidc_tokens.current_token(profile=creds.profile)
    return _http(creds.url, token)


def _http(url: str, key: str | None) -> httpx.Client:
    """The transport to the server; without a key, for its public routes only."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def call(method: str, path: str, **kwargs: Any) -> Any:
    """Send a request; on a problem response print its detail and exit non-zero."""
    return _send(client, method, path, **kwargs)


def call_with(url: str, key: str, method: str, path: str, **kwargs: Any) -> Any:
    """`call` with explicit credentials (`privet login` checks a key before storing it;
    `privet invitations accept` presents an invitation token)."""
    return _send(lambda: _http(url, key), method, path, **kwargs)


def _send(make: Callable[[], httpx.Client], method: str, path: str, **kwargs: Any) -> Any:
    response = _response(make, method, path, **kwargs)
    return response.json() if response.content else None


def _response(
    make: Callable[[], httpx.Client], method: str, path: str, **kwargs: Any
) -> httpx.Response:
    try:
        with make() as http:
            response = http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        err.print(
            f"[red]error:[/] cannot reach the server at {profiles.credentials().url}: {exc}. "
            "Is `privet serve` running, and is PRIVET_URL (or the profile's URL) right?"
        )
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        fail(response)
    return response


def call_pages(
    path: str, params: dict[str, Any], *, all_pages: bool
) -> tuple[list[Any], str | None]:
    """GET a list that answers a bare array and names its next page in a ``Link`` header
    (keyset paging): one page, or with ``all_pages`` every page to the end. Returns the
    rows and the cursor of the page after them (None: the end)."""
    rows: list[Any] = []
    url: str | None = path
    cursor: str | None = None
    while url is not None:
        response = _response(client, "GET", url, params=params if url == path else None)
        rows += response.json()
        url = response.links.get("next", {}).get("url")
        cursor = httpx.URL(url).params.get("after") if url else None
        if not all_pages:
            break
    return rows, cursor


def fetch_text(path: str) -> str:
    """GET a text resource (a model card) as-is."""
    with client() as http:
        response = http.get(path)
    if response.status_code >= 400:
        fail(response)
    return response.text


def fail(response: httpx.Response) -> NoReturn:
    """Print a problem response's detail (and, for a refusal, each rule with its reason and
    the rows it found) and exit non-zero."""
    body: Any = None
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title")
    except (ValueError, AttributeError):
        detail = response.text[:500]
    err.print(f"[red]error {response.status_code}:[/] {escape(str(detail))}", highlight=False)
    if isinstance(body, dict):
        for rule, why in (body.get("reasons") or {}).items():
            err.print(f"  rule {rule}: {why}", highlight=False, markup=False)
        for found in body.get("pii_findings") or []:
            lines = ", ".join(str(n) for n in found.get("lines", []))
            err.print(
                f"  {found.get('kind')}: {found.get('rows')} row(s), lines {lines}",
                highlight=False,
                markup=False,
            )
    raise typer.Exit(1)


def download(path: str, out: Path, params: dict[str, Any] | None = None) -> int:
    """Stream a GET response into `out` (bounded memory); returns the bytes written. The
    bytes go to `out`.part first, renamed to `out` only once the response is complete, so
    a stream cut short leaves no half-written file."""
    part = out.with_name(out.name + ".part")
    try:
        with client() as http, http.stream("GET", path, params=params) as resp:
            if resp.status_code >= 400:
                resp.read()
                fail(resp)
            total = 0
            with part.open("wb") as fh:
                for chunk in resp.iter_bytes():
                    fh.write(chunk)
                    total += len(chunk)
        part.replace(out)
    finally:
        part.unlink(missing_ok=True)
    return total
