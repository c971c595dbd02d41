"""A bad day in production, with real processes: the gateway SIGKILLed during a dataset
upload, a prediction batch and an audit export; PostgreSQL restarted under load; PRIVET_HOME
on a full disk; a corrupted blob. After each: the server comes back, `privet audit verify`
passes, nothing accepted is lost, nothing is half-written, and the user's error was clear.

(A worker SIGKILLed mid-epoch is tests/e2e/test_training_flow.py::test_worker_sigkill_mid_training.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.datasets.conftest import WORDS, declarations, make_rows, to_csv, upload
from tests.e2e.conftest import PRIVET, Server, project_events, start_server, stop_server

pytestmark = pytest.mark.slow

PURPOSE = "credit_scoring"


@dataclass
class Stack:
    server: Server
    admin_key: str
    home: Path
    env: dict[str, str]
    project: str
    predictor: str
    database_url: str | None = None

    def http(self, key: str | None = None, timeout: float = 60) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url,
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=timeout,
        )


def _tiny_catalog(root: Path) -> tuple[Path, Any]:
    from privet.jobs.catalog import write_catalog_file
    from privet.training.catalog import CATALOG, build_tiny_bert

    spec = build_tiny_bert(
        root / "tiny", name="tiny-fault", words=WORDS, max_position_embeddings=64
    )
    CATALOG.register(spec, replace=True)
    return write_catalog_file(root / "catalog.json", [spec]), spec


def _build(root: Path, *, database_url: str | None = None, home: Path | None = None) -> Stack:
    """A server (no training worker), a project with an approved tiny model and a
    predictor key, on `home` (default root/home)."""
    from privet.config import Settings
    from privet.db import dispose_engines
    from privet.runtime import build_runtime
    from tests.conftest import predictor_key
    from tests.inference.conftest import classifier_weights, register_version

    catalog, spec = _tiny_catalog(root)
    home = home or root / "home"
    env = {"PRIVET_JOBS_EXTRA_CATALOG": str(catalog), "PRIVET_INFERENCE_STATE_TTL_S": "0"}
    if database_url:
        env["PRIVET_DATABASE_URL"] = database_url
    server = start_server(home, env=env, args=("--no-worker",))
    assert server.admin_key
    with server.client() as http:
        created = http.post("/v1/projects", json={"name": "faults"}).json()
        project, creator = created["id"], created["created_by"]
    runtime = build_runtime(Settings(home=home, database_url=database_url))
    register_version(
        runtime, project, base_model=spec.name, weights=classifier_weights(spec.name, 2)
    )
    key = predictor_key(runtime, project, name="scoring", key_name="scoring", creator=creator)
    dispose_engines()
    return Stack(server, server.admin_key, home, env, project, key, database_url)


def _kill(stack: Stack) -> None:
    os.killpg(stack.server.process.pid, signal.SIGKILL)
    stack.server.process.wait()


def _restart(stack: Stack) -> None:
    if stack.server.process.poll() is None:
        _kill(stack)
    started = time.monotonic()
    stack.server = start_server(stack.home, env=stack.env, args=("--no-worker",))
    print(f"restarted in {time.monotonic() - started:.1f} s")
    assert stack.server.admin_key == "", "a restart must not mint a new admin key"


def _audit_verify(stack: Stack) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVET_")}
    env.update(PRIVET_HOME=str(stack.home), **stack.env)
    run = subprocess.run(
        [PRIVET, "audit", "verify"], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _predict(http: httpx.Client, stack: Stack, n: int = 8) -> httpx.Response:
    return http.post(
        f"/v1/projects/{stack.project}/models/risk/versions/1:predict",
        json={"purpose": PURPOSE, "items": [{"text": f"loan late payment {i}"} for i in range(n)]},
    )


def _events(stack: Stack, type_prefix: str) -> list[dict[str, Any]]:
    with stack.http() as http:
        events = project_events(http, stack.project)
    return [e for e in events if e["type"].startswith(type_prefix)]


def _wait_ready(stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{stack.server.url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("the server did not become ready again")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    built = _build(tmp_path_factory.mktemp("faults"))
    try:
        yield built
    finally:
        stop_server(built.server)


# --- SIGKILL of the gateway -----------------------------------------------------------------


def test_sigkill_during_dataset_upload(stack: Stack) -> None:
    canary = f"CANARY-UPLOAD-{os.getpid()}"
    with stack.http() as http:
        before = http.get(f"/v1/projects/{stack.project}/datasets").json()
    sent = threading.Event()
    outcome: dict[str, Any] = {}

    def body() -> Iterator[bytes]:
        boundary = b"--fault"
        yield boundary + b'\r\nContent-Disposition: form-data; name="declarations"\r\n'
        yield b"Content-Type: application/json\r\n\r\n"
        yield json.dumps(declarations(name="killed")).encode() + b"\r\n"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="k.csv"\r\n'
        yield b"Content-Type: text/csv\r\n\r\ntext,label,customer\r\n"
        row = 0
        while True:
            chunk = b"".join(
                f"{canary} loan application row {row + i},{i % 2},cust-{row + i}\r\n".encode()
                for i in range(2000)
            )
            row += 2000
            yield chunk
            if row >= 20000:
                sent.set()
                time.sleep(0.05)

    def send() -> None:
        try:
            with stack.http(timeout=120) as http:
                outcome["response"] = http.post(
                    f"/v1/projects/{stack.project}/datasets",
                    content=body(),
                    headers={"Content-Type": "multipart/form-data; boundary=fault"},
                )
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=send)
    thread.start()
    assert sent.wait(60)
    _kill(stack)
    thread.join(60)
    assert "response" not in outcome, outcome
    print(f"client saw: {outcome['error']!r}")  # the connection dropped; nothing claimed success
    _restart(stack)
    with stack.http() as http:
        after = http.get(f"/v1/projects/{stack.project}/datasets").json()
        assert [d["id"] for d in after] == [d["id"] for d in before]  # nothing half-registered
        ok = upload(
            http,
            None,
            stack.project,
            to_csv(make_rows(30)),
            filename="a.csv",
            content_type="text/csv",
            decl=declarations(name="after"),
        )
        assert ok.status_code == 201, ok.text
    spools = [p for p in stack.home.rglob("*") if "spool" in str(p) and p.is_file()]
    assert spools == [], spools  # the dead process's spool was cleaned at start-up
    for path in stack.home.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
    _audit_verify(stack)


def test_sigkill_during_prediction_batches(stack: Stack) -> None:
    """Predictions answered before the kill are all in the ledger (nothing accepted lost)."""
    answered: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with stack.http(stack.predictor, timeout=30) as http:
            while not stop.is_set():
                try:
                    response = _predict(http, stack, n=16)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    return
                assert response.status_code == 200, response.text
                answered.extend(p["prediction_id"] for p in response.json()["predictions"])

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(answered) < 64 and time.monotonic() < deadline:
        time.sleep(0.1)
    _kill(stack)
    stop.set()
    for t in threads:
        t.join(60)
    assert len(answered) >= 64
    print(f"{len(answered)} predictions answered before SIGKILL; clients saw {errors[:1]}")
    _restart(stack)
    with stack.http(stack.predictor) as http:
        assert _predict(http, stack, n=2).status_code == 200
    # Appends are durable at once; integration into the tree is the sequencer's (a moment
    # after the restart): wait for it rather than read a log still catching up.
    deadline = time.monotonic() + 90
    while True:
        logged = {e["objects"].get("prediction") for e in _events(stack, "prediction.made")}
        missing = [p for p in answered if p not in logged]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert missing == [], f"{len(missing)} answered predictions have no ledger event"
    _audit_verify(stack)


def test_sigkill_during_audit_export(stack: Stack) -> None:
    with stack.http() as http:  # a longer log, so the export takes a moment
        for _ in range(5):
            http.get(f"/v1/projects/{stack.project}/datasets")
    outcome: dict[str, Any] = {}
    started = threading.Event()

    def export() -> None:
        try:
            with stack.http(timeout=60) as http:
                started.set()
                with http.stream("GET", "/v1/audit/export") as response:
                    outcome["status"] = response.status_code
                    outcome["bytes"] = sum(len(c) for c in response.iter_bytes())
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=export)
    thread.start()
    started.wait(10)
    time.sleep(0.2)
    _kill(stack)
    thread.join(60)
    print(f"export interrupted: {outcome}")
    _restart(stack)
    leftovers = sorted(p.name for p in stack.home.glob("export-*"))
    with stack.http() as http:
        again = http.get("/v1/audit/export")
    assert again.status_code == 200
    lines = again.text.splitlines()
    assert lines and json.loads(lines[0])
    _audit_verify(stack)
    # A bundle interrupted by SIGKILL may leave its (personal-data-free) scratch copy;
    # the next start-up must not trip over it, and it must hold no secrets.
    from tests.hardening.secrets_scan import leaks

    for name in leftovers:
        for path in (stack.home / name).rglob("*"):
            if path.is_file():
                assert leaks(stack.home, path.read_bytes()) == []


def test_corrupted_blob_is_refused_clearly(stack: Stack) -> None:
    """Flip one byte in the middle of a model-weights blob: the version refuses to serve with
    a clear error (the envelope's authentication fails); other data keeps working."""
    from privet.config import Settings
    from privet.db import dispose_engines
    from privet.runtime import build_runtime
    from tests.inference.conftest import classifier_weights, register_version

    runtime = build_runtime(Settings(home=stack.home, database_url=stack.database_url))
    before = {p for p in runtime.settings.blobs_dir.rglob("*") if p.is_file()}
    register_version(
        runtime,
        stack.project,
        base_model="tiny-fault",
        weights=classifier_weights("tiny-fault", 2, seed=3),
        model_name="fragile",
    )
    dispose_engines()
    new = [p for p in runtime.settings.blobs_dir.rglob("*") if p.is_file() and p not in before]
    assert new, "the weights blob was not found"
    blob = max(new, key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    with stack.http(stack.predictor) as http:
        response = http.post(
            f"/v1/projects/{stack.project}/models/fragile/versions/1:predict",
            json={"purpose": PURPOSE, "items": [{"text": "loan"}]},
        )
        print(f"corrupted weights → {response.status_code} {response.text[:300]}")
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.status_code != 200
        detail = response.json()["detail"].lower()
        assert any(w in detail for w in ("integrity", "corrupt", "tamper", "authentic")), detail
        assert _predict(http, stack, n=2).status_code == 200  # the healthy model still serves
    _audit_verify(stack)


# --- PostgreSQL restarted under load ----------------------------------------------------------


@dataclass
class PrivateCluster:
    """A throwaway PostgreSQL cluster of this test's own (initdb in /tmp, a free port), so
    that restarting it disturbs no other test (the suite runs tests in parallel)."""

    bin: Path
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/privet"

    def ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin / "pg_ctl"),
                *args,
                "-D",
                str(self.root / "data"),
                "-l",
                str(self.root / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def restart(self) -> float:
        started = time.monotonic()
        self.ctl("restart", "-m", "fast")
        return time.monotonic() - started


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    import tempfile

    from sqlalchemy import create_engine, text

    from privet import migrate
    from privet.db import create_db_engine
    from tests.e2e.conftest import free_port

    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if os.geteuid() != 0 or not versions:
        pytest.skip("a private PostgreSQL cluster needs root and the server binaries")
    root = Path(tempfile.mkdtemp(prefix="privet-pg-"))
    shutil.chown(root, "postgres", "postgres")
    cluster = PrivateCluster(bin=versions[-1].parent, root=root, port=free_port())
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(cluster.bin / "initdb"),
            "-D",
            str(root / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    cluster.ctl("start")
    try:
        admin = create_engine(
            cluster.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE privet"))
        admin.dispose()
        engine = create_db_engine(cluster.url)
        migrate.upgrade(engine)
        engine.dispose()
        yield cluster
    finally:
        from privet.db import dispose_engines

        dispose_engines()
        cluster.ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
def test_postgres_restart_under_load(tmp_path: Path, private_postgres: PrivateCluster) -> None:
    stack = _build(tmp_path, database_url=private_postgres.url)
    accepted: list[str] = []
    refused: list[tuple[int, str]] = []
    transport: list[str] = []
    stop = threading.Event()

    def load(n: int) -> None:
        i = 0
        with stack.http(timeout=30) as admin, stack.http(stack.predictor, timeout=30) as app:
            while not stop.is_set():
                i += 1
                name = f"load-{n}-{i}"
                try:
                    created = admin.post("/v1/projects", json={"name": name})
                    predicted = _predict(app, stack, n=2)
                except httpx.HTTPError as exc:
                    transport.append(repr(exc))
                    time.sleep(0.2)
                    continue
                for response in (created, predicted):
                    if response.status_code >= 400:
                        assert response.headers["content-type"].startswith(
                            "application/problem+json"
                        ), response.text
                        refused.append((response.status_code, response.json()["detail"]))
                if created.status_code == 201:
                    accepted.append(created.json()["id"])

    threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
    try:
        for t in threads:
            t.start()
        time.sleep(3)
        took = private_postgres.restart()
        # this test process's own pooled connections died with the server too
        from privet.db import dispose_engines

        dispose_engines()
        time.sleep(5)
        stop.set()
        for t in threads:
            t.join(60)
        print(
            f"PostgreSQL restart took {took:.1f} s; {len(accepted)} projects accepted, "
            f"{len(refused)} refused {sorted({r[0] for r in refused})}: "
            f"{sorted({r[1] for r in refused})[:3]}, {len(transport)} transport errors"
        )
        assert not [r for r in refused if r[0] == 500], stack.server.logs()[-4000:]  # 503, not 500
        assert all(r[0] != 503 or "retry" in r[1] for r in refused), refused[:3]
        _wait_ready(stack)
        with stack.http() as http:
            listed = {p["id"] for p in http.get("/v1/projects").json()}
            assert set(accepted) <= listed  # nothing acknowledged was lost
            assert http.post("/v1/projects", json={"name": "after-restart"}).status_code == 201
        with stack.http(stack.predictor) as http:
            assert _predict(http, stack, n=2).status_code == 200
        _audit_verify(stack)
    finally:
        stop.set()
        stop_server(stack.server)


# --- disk full ----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs (root only); skipped clearly where mounting is not allowed."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here ({done.stderr.strip()}): disk-full not tested"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_in_privet_home(tmp_path: Path, small_disk: Path) -> None:
    stack = _build(tmp_path, home=small_disk / "home")
    try:
        rows = "".join(
            f"loan application number {i} with a longer text to fill the disk {'x' * 200},"
            f"{i % 2},cust-{i}\r\n"
            for i in range(30000)
        )  # ~8 MB a file
        payload = ("text,label,customer\r\n" + rows).encode()
        accepted: list[str] = []
        failure: httpx.Response | None = None
        with stack.http(timeout=120) as http:
            for i in range(8):
                response = http.post(
                    f"/v1/projects/{stack.project}/datasets",
                    files={
                        "declarations": (
                            None,
                            json.dumps(declarations(name=f"big{i}")),
                            "application/json",
                        ),
                        "file": (f"big{i}.csv", payload, "text/csv"),
                    },
                )
                if response.status_code == 201:
                    accepted.append(response.json()["dataset_id"])
                    continue
                failure = response
                break
        assert failure is not None, "the 24 MiB disk never filled"
        print(
            f"disk full after {len(accepted)} uploads → {failure.status_code} {failure.text[:300]}"
        )
        assert failure.headers["content-type"].startswith("application/problem+json")
        errors = [line for line in stack.server.logs().splitlines() if "rror" in line]
        assert failure.status_code in (413, 503, 507), (failure.text, errors[-10:])
        assert "disk space" in failure.json()["detail"], failure.text
        # The server is still up and answers; what was accepted is still there.
        assert httpx.get(f"{stack.server.url}/healthz", timeout=10).status_code == 200
        with stack.http() as http:
            listed = {d["id"] for d in http.get(f"/v1/projects/{stack.project}/datasets").json()}
        assert set(accepted) <= listed
        spools = [p for p in stack.home.rglob("*") if "spool" in str(p) and p.is_file()]
        assert spools == [], spools
        # Make room, and the same upload goes through; the ledger verifies.
        _kill(stack)
        shutil.rmtree(stack.home / "blobs" / "tmp", ignore_errors=True)
        _restart(stack)
        _audit_verify(stack)
    finally:
        stop_server(stack.server)
