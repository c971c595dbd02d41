"""The platform as a user starts it: `privet serve` on embedded defaults, over real HTTP."""

from __future__ import annotations

import stat

from tests.e2e.conftest import KEY_RE, start_server, stop_server


def test_first_start_bootstraps_and_serves(server) -> None:  # type: ignore[no-untyped-def]
    assert server.admin_key, "privet serve must print the one-time admin key"
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json()["status"] == "ready"
        created = http.post("/v1/projects", json={"name": "loans"})
        assert created.status_code == 201
        assert [p["name"] for p in http.get("/v1/projects").json()] == ["loans"]
    with server.client(key="pvt_wrong") as http:
        denied = http.get("/v1/projects")
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"
    secrets = server.home / "secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for path in secrets.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    secret = server.admin_key.split("_", 2)[2]
    assert secret in server.logs()  # printed once, on the console, at bootstrap
    db_bytes = (server.home / "privet.db").read_bytes()
    assert secret.encode() not in db_bytes


def test_restart_keeps_state_and_prints_no_new_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = start_server(tmp_path / "home")
    try:
        with first.client() as http:
            assert http.post("/v1/projects", json={"name": "kept"}).status_code == 201
    finally:
        stop_server(first)
    second = start_server(tmp_path / "home")
    try:
        assert not KEY_RE.search(second.logs())
        with second.client(first.admin_key) as http:
            assert [p["name"] for p in http.get("/v1/projects").json()] == ["kept"]
    finally:
        stop_server(second)


def test_two_processes_starting_at_once_bootstrap_one_admin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two replicas starting on one empty PostgreSQL database: one migrates, one admin key."""
    import os
    import secrets
    import subprocess

    from sqlalchemy import create_engine, text

    from tests.conftest import PG_ADMIN_URL
    from tests.e2e.conftest import PRIVET

    name = f"privet_race_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVET_")}
    env.update(PRIVET_HOME=str(tmp_path / "home"), PRIVET_DATABASE_URL=url, COLUMNS="200")
    try:
        procs = [
            subprocess.Popen(
                [PRIVET, "init"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=180)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        assert sum(len(KEY_RE.findall(out)) for out in outputs) == 1, outputs
        engine = create_engine(url)
        with engine.connect() as conn:
            admins = conn.execute(
                text(
                    "SELECT count(*) FROM role_bindings WHERE role = 'admin' AND project_id IS NULL"
                )
            ).scalar_one()
        engine.dispose()
        assert admins == 1
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_an_idle_keep_alive_connection_outlives_uvicorns_default(server) -> None:  # type: ignore[no-untyped-def]
    """A client (or load balancer) that sends its next request on a connection idle for
    longer than uvicorn's 5 s default is answered, not reset (privet.cli.main.KEEP_ALIVE_S)."""
    import http.client
    import time
    from urllib.parse import urlsplit

    where = urlsplit(server.url)
    conn = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        assert first.status == 200 and first.read() == b'{"status":"ok"}'
        socket_used = conn.sock
        time.sleep(7)  # past uvicorn's 5 s default keep-alive timeout
        conn.request("GET", "/healthz")  # on the same socket: a closed one is not reopened
        second = conn.getresponse()
        assert conn.sock is socket_used
        assert second.status == 200 and second.read() == b'{"status":"ok"}'
    finally:
        conn.close()
