"""A real `privet serve` subprocess on a free port, driven over HTTP."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

KEY_RE = re.compile(r"pvt_[A-Za-z0-9]{16}_[A-Za-z0-9_-]{43}")
PRIVET = str(Path(sys.executable).with_name("privet"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    admin_key: str
    home: Path
    process: subprocess.Popen[str]
    log_path: Path

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    home: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Server:
    port = free_port()
    log_path = home.parent / f"server-{port}.log"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PRIVET_")}
    full_env = {
        **inherited,
        "PRIVET_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "200",
        **(env or {}),
    }
    log = log_path.open("w")
    process = subprocess.Popen(
        [PRIVET, "serve", "--port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=full_env,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"privet serve exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"privet serve did not come up:\n{log_path.read_text()}")
    match = KEY_RE.search(log_path.read_text())
    return Server(url, match.group(0) if match else "", home, process, log_path)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
    # Whatever became of the server, nothing it started (its local worker) outlives the test.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.process.pid, signal.SIGKILL)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path / "home")
    yield srv
    stop_server(srv)


def project_events(http: httpx.Client, project: str) -> list[dict[str, Any]]:
    """Every integrated ledger event of ``project``, read page by page from /v1/audit/events."""
    events: list[dict[str, Any]] = []
    start: int | None = 0
    while start is not None:
        page = http.get(
            "/v1/audit/events", params={"project": project, "start": start, "limit": 1000}
        ).json()
        events += [item["event"] for item in page["items"]]
        start = page["next_start"]
    return events


def tiny_catalog_file(root: Path, name: str, words: Sequence[str] | None = None) -> Path:
    """A tiny pinned BERT ``name`` built under ``root`` (its vocabulary ``words``, default the
    dataset tests' WORDS), in the catalog file a server is given through
    PRIVET_JOBS_EXTRA_CATALOG."""
    from privet.jobs.catalog import write_catalog_file
    from privet.training.catalog import build_tiny_bert
    from tests.datasets.conftest import WORDS

    spec = build_tiny_bert(
        root / "model", name=name, words=words or WORDS, max_position_embeddings=64
    )
    return write_catalog_file(root / "catalog.json", [spec])


def named_person_key(
    home: Path, project: str, role: str, *, name: str, database_url: str | None = None
) -> str:
    """A project key of a new named person (a user principal) holding ``role`` in
    ``project``, made through the service layer on the server's home and database.

    Approvals and review decisions need a named person other than the one accountable for
    the work (service accounts answer to the human who created them), and users' keys are
    not minted for them by someone else over the API."""
    from privet.config import Settings
    from privet.db import session_scope
    from privet.runtime import build_runtime
    from tests.conftest import mint_key, seed_principal

    runtime = build_runtime(Settings(home=home, database_url=database_url))
    with session_scope(runtime.engine) as session:
        person = seed_principal(session, role, project, name)
        created = mint_key(session, runtime, person.id, f"{name} key", project_id=project)
    return str(created.key)
