"""A small HTTP client for CLI commands that talk to a running server (PRIVET_URL,
PRIVET_API_KEY), turning problem responses into readable errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


def client() -> httpx.Client:
    url = os.environ.get("PRIVET_URL", "http://127.0.0.1:8000")
    key = os.environ.get("PRIVET_API_KEY")
    if not key:
        err.print(
            "[red]error:[/] set PRIVET_API_KEY to an API key (privet serve prints the "
            "first admin key; `privet keys create-admin` mints another)"
        )
        raise typer.Exit(2)
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def call(method: str, path: str, **kwargs: Any) -> Any:
    """Send a request; on a problem response print its detail and exit non-zero."""
    try:
        with client() as http:
            response = http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        err.print(
            f"[red]error:[/] cannot reach the server at "
            f"{os.environ.get('PRIVET_URL', 'http://127.0.0.1:8000')}: {exc}. "
            "Is `privet serve` running, and is PRIVET_URL right?"
        )
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        fail(response)
    return response.json() if response.content else None


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
    """Stream a GET response into `out` (bounded memory); returns the bytes written."""
    with client() as http, http.stream("GET", path, params=params) as resp:
        if resp.status_code >= 400:
            resp.read()
            fail(resp)
        total = 0
        with out.open("wb") as fh:
            for chunk in resp.iter_bytes():
                fh.write(chunk)
                total += len(chunk)
    return total
