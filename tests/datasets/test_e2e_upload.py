"""Uploads through a real `privet serve`: the real SST-2 file, a canary, and interrupted
uploads (client disconnect, server SIGKILLed) that must leave nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from privet.cli.datasets import multipart_frame
from tests.conftest import SHARED_DATA
from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.e2e.conftest import Server, start_server, stop_server

SST2 = SHARED_DATA / "sst2" / "train.tsv"


def multipart(decl: dict, filename: str, content: bytes) -> tuple[bytes, bytes, str]:
    """(head, tail, content type) around the file bytes of an upload, framed as the CLI
    frames it."""
    boundary, head, tail = multipart_frame(filename, decl)
    return head, tail, f"multipart/form-data; boundary={boundary}"


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _plaintext_check(server: Server, tmpdir: Path, needle: bytes) -> None:
    assert _files(tmpdir) == [], "the server wrote a temporary file"
    for path in _files(server.home):
        assert needle not in path.read_bytes(), path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    tmpdir = tmp_path / "server-tmp"
    tmpdir.mkdir()
    srv = start_server(tmp_path / "home", env={"TMPDIR": str(tmpdir)})
    yield srv, tmpdir
    stop_server(srv)


def _project(server: Server) -> str:
    with server.client() as http:
        return str(http.post("/v1/projects", json={"name": "sst"}).json()["id"])


@pytest.mark.shared_data
def test_sst2_train_upload_counts_and_canary(served) -> None:  # type: ignore[no-untyped-def]
    server, tmpdir = served
    project = _project(server)
    canary = f"CANARY-{uuid.uuid4().hex}"
    raw = SST2.read_bytes()
    lines = raw.split(b"\r\n")
    lines[1234] = lines[1234].replace(b"\t", f"\tnote {canary} ".encode(), 1)
    content = b"\r\n".join(lines)
    decl = declarations(
        name="sst2",
        text_column="sentence",
        label_column="label",
        subject_id_column=None,
        contains_personal_data=False,
        data_categories=[],
        purposes=["sentiment"],
        legal_basis="legitimate_interests",
    )
    head, tail, ctype = multipart(decl, "train.tsv", content)
    with server.client() as http:
        response = http.post(
            f"/v1/projects/{project}/datasets",
            content=head + content + tail,
            headers={"content-type": ctype},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["row_count"] == 67349
    assert body["label_counts"] == {"0": 29780, "1": 37569}
    assert body["format"] == "tsv" and body["pii_scan"]["suspected"] is False
    assert body["split"]["counts"]["test"] + body["split"]["counts"]["validation"] > 13000
    _plaintext_check(server, tmpdir, canary.encode())


def _big_csv() -> tuple[bytes, bytes]:
    canary = f"CANARY-{uuid.uuid4().hex}".encode()
    rows = make_rows(60000, seed=3)
    rows[100]["text"] = canary.decode()
    return to_csv(rows), canary


def _send_partial(
    server: Server, project: str, body: bytes, ctype: str, fraction: float
) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    request = (
        f"POST /v1/projects/{project}/datasets HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {server.admin_key}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(request + body[: int(len(body) * fraction)])
    return sock


def _wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _temp_blobs(server: Server) -> list[Path]:
    return [p for p in _files(server.home / "blobs") if ".tmp-" in p.name]


def _assert_nothing_registered(server: Server, project: str) -> None:
    with server.client() as http:
        assert http.get(f"/v1/projects/{project}/datasets").json() == []
    assert _files(server.home / "blobs") == []
    assert [p for p in _files(server.home / "tmp")] == []


def test_client_disconnect_midway_leaves_nothing(served) -> None:  # type: ignore[no-untyped-def]
    server, tmpdir = served
    project = _project(server)
    content, canary = _big_csv()
    head, tail, ctype = multipart(declarations(), "loans.csv", content)
    sock = _send_partial(server, project, head + content + tail, ctype, 0.5)
    assert _wait_for(lambda: bool(_temp_blobs(server))), "the upload never started streaming"
    sock.close()
    assert _wait_for(lambda: not _temp_blobs(server)), "the partial blob was not removed"
    _assert_nothing_registered(server, project)
    _plaintext_check(server, tmpdir, canary)
    assert "Traceback" not in server.logs()


def test_server_killed_midway_leaves_nothing_after_restart(tmp_path: Path) -> None:
    tmpdir = tmp_path / "server-tmp"
    tmpdir.mkdir()
    env = {"TMPDIR": str(tmpdir)}
    server = start_server(tmp_path / "home", env=env)
    try:
        project = _project(server)
        content, canary = _big_csv()
        head, tail, ctype = multipart(declarations(), "loans.csv", content)
        sock = _send_partial(server, project, head + content + tail, ctype, 0.6)
        assert _wait_for(lambda: bool(_temp_blobs(server)))
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
        sock.close()
        leftovers = _temp_blobs(server)
        assert leftovers, "expected the killed writer's temp file"
        for path in leftovers:
            assert canary not in path.read_bytes()  # ciphertext only, even half-written
    finally:
        stop_server(server)
    again = start_server(tmp_path / "home", env=env)
    try:
        again.admin_key = server.admin_key
        _assert_nothing_registered(again, project)
        _plaintext_check(again, tmpdir, canary)
        with again.client() as http:  # and the platform still works
            ok = upload(http, None, project, to_csv(make_rows(30)), content_type="text/csv")
            assert ok.status_code == 201, ok.text
    finally:
        stop_server(again)


def test_parquet_spool_is_ciphertext_and_removed(served) -> None:  # type: ignore[no-untyped-def]
    from tests.datasets.conftest import to_parquet

    server, tmpdir = served
    project = _project(server)
    rows = make_rows(3000, seed=9)
    canary = f"CANARY-{uuid.uuid4().hex}"
    rows[5]["text"] = canary
    with server.client() as http:
        response = upload(
            http, None, project, to_parquet(rows, row_group_size=500), filename="loans.parquet"
        )
    assert response.status_code == 201, response.text
    assert response.json()["row_count"] == 3000
    _plaintext_check(server, tmpdir, canary.encode())
    assert _files(server.home / "tmp") == []
