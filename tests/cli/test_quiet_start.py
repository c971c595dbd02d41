"""Quiet start: `privet serve` (with its local training worker) prints no Python warning."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import start_server, stop_server


@pytest.mark.slow
def test_serve_and_its_local_worker_print_no_warning(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", env={"PYTHONWARNINGS": "default"})
    try:
        deadline = time.monotonic() + 120
        while "started" not in server.logs() or "worker" not in server.logs():
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.5)
        time.sleep(1)
    finally:
        stop_server(server)
    logs = server.logs()
    assert "Warning" not in logs, logs
