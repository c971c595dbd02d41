"""Every way an upload can be wrong gets a precise 4xx, and leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.datasets.conftest import declarations, make_rows, to_csv, to_jsonl, upload


def _nothing_left(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    listed = client.get(f"/v1/projects/{project}/datasets", headers=admin.headers).json()
    assert listed == []
    blobs = [p for p in Path(runtime.settings.blobs_dir).rglob("*") if p.is_file()]
    assert blobs == []
    spool = runtime.settings.home / "tmp"
    assert not spool.exists() or not [p for p in spool.rglob("*") if p.is_file()]
    from sqlmodel import select

    from privet.crypto import DataKey
    from privet.db import session_scope

    with session_scope(runtime.engine) as session:
        assert session.exec(select(DataKey)).all() == []


def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def test_missing_and_extra_columns(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    rows = make_rows(30)
    body = to_csv(rows, columns=("text", "label"))
    problem = _problem(upload(client, admin.headers, project, body), 422)
    assert problem["missing_columns"] == ["customer"]
    extra = [dict(r, branch="x") for r in rows]
    problem = _problem(
        upload(
            client,
            admin.headers,
            project,
            to_csv(extra, columns=("text", "label", "customer", "branch")),
        ),
        422,
    )
    assert problem["extra_columns"] == ["branch"]
    assert "extra column" in problem["detail"]
    _nothing_left(client, admin, project, runtime)


def test_bad_rows_report_first_line_numbers(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    rows = make_rows(30)
    rows[4]["text"] = "   "  # line 6 (header is line 1)
    rows[9]["text"] = ""  # line 11
    lines = to_csv(rows).split(b"\r\n")
    lines[15] = b"only,two"  # line 16: wrong field count
    problem = _problem(upload(client, admin.headers, project, b"\r\n".join(lines)), 422)
    assert problem["line_numbers"] == [6, 11, 16]
    assert problem["detail"].startswith("line 6: empty text")
    assert {e["line"]: e["problem"] for e in problem["errors"]}[16].startswith("has 2 fields")
    _nothing_left(client, admin, project, runtime)


def test_jsonl_unparseable_line(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    body = to_jsonl(make_rows(30)).split(b"\n")
    body[2] = b'{"text": "broken'
    problem = _problem(
        upload(client, admin.headers, project, b"\n".join(body), filename="x.jsonl"), 422
    )
    assert problem["line_numbers"] == [3]
    assert "not valid JSON" in problem["detail"]


def test_bad_encoding(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    lines = to_csv(make_rows(30)).split(b"\r\n")
    lines[7] = b"caf\xe9 latin-1 text,1,cust-x"
    problem = _problem(upload(client, admin.headers, project, b"\r\n".join(lines)), 422)
    assert problem["line_numbers"] == [8]
    assert "UTF-8" in problem["detail"]
    _nothing_left(client, admin, project, runtime)


def test_label_problems(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    one = make_rows(30, labels=("1",))
    problem = _problem(upload(client, admin.headers, project, to_csv(one)), 422)
    assert "fewer than two labels" in problem["detail"]
    rows = make_rows(30)
    rows[0]["label"] = "rare"
    problem = _problem(upload(client, admin.headers, project, to_csv(rows)), 422)
    assert "too few examples" in problem["detail"]
    assert problem["label_counts"]["rare"] == 1
    _nothing_left(client, admin, project, runtime)


def test_duplicate_subject_ids_declared_unique(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    rows = make_rows(30)
    rows[12]["customer"] = rows[3]["customer"]
    decl = declarations(subject_ids_unique=True)
    problem = _problem(upload(client, admin.headers, project, to_csv(rows), decl=decl), 422)
    assert problem["line_numbers"] == [14]
    assert "duplicate subject id" in problem["detail"]
    # not declared unique: accepted
    ok = upload(client, admin.headers, project, to_csv(rows))
    assert ok.status_code == 201, ok.text


def test_unsupported_format_and_media_type(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    problem = _problem(
        upload(client, admin.headers, project, b"PK\x03\x04", filename="loans.xlsx"), 415
    )
    assert "csv" in problem["supported"]
    raw = client.post(
        f"/v1/projects/{project}/datasets",
        content=b"text,label\n",
        headers={**admin.headers, "content-type": "text/csv"},
    )
    _problem(raw, 415)
    _nothing_left(client, admin, project, runtime)


def test_declarations_errors(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    rows = to_csv(make_rows(30))
    no_subject = declarations(subject_id_column=None)
    problem = _problem(upload(client, admin.headers, project, rows, decl=no_subject), 422)
    assert "subject_id_column is required" in problem["detail"]
    bad_basis = declarations(legal_basis="because")
    problem = _problem(upload(client, admin.headers, project, rows, decl=bad_basis), 422)
    assert "legal_basis" in problem["detail"]
    # declarations after the file: refused (they must come first)
    files = {
        "file": ("loans.csv", rows, "text/csv"),
        "declarations": (None, json.dumps(declarations()), "application/json"),
    }
    problem = _problem(
        client.post(f"/v1/projects/{project}/datasets", files=files, headers=admin.headers), 422
    )
    assert "first multipart part must be `declarations`" in problem["detail"]
    _nothing_left(client, admin, project, runtime)


def test_truncated_multipart_body(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="declarations"\r\n\r\n'
        f"{json.dumps(declarations())}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="loans.csv"\r\n\r\n'
    ).encode() + to_csv(make_rows(30))
    response = client.post(
        f"/v1/projects/{project}/datasets",
        content=body,
        headers={**admin.headers, "content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "closing boundary" in _problem(response, 422)["detail"]
    _nothing_left(client, admin, project, runtime)


@pytest.fixture
def small_limit_client(runtime):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from privet.api.app import create_app

    runtime.settings.max_upload_bytes = 4096
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        yield c


def test_oversize_upload_is_413(small_limit_client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    client = small_limit_client
    project = client.post("/v1/projects", json={"name": "big"}, headers=admin.headers).json()["id"]
    response = upload(client, admin.headers, project, to_csv(make_rows(400)))
    assert _problem(response, 413)["limit_bytes"] == 4096
    _nothing_left(client, admin, project, runtime)


def test_name_conflict_and_new_version(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    first = upload(client, admin.headers, project, to_csv(make_rows(30)))
    assert first.status_code == 201
    dataset_id = first.json()["dataset_id"]
    again = _problem(upload(client, admin.headers, project, to_csv(make_rows(30))), 409)
    assert again["dataset_id"] == dataset_id
    second = upload(
        client, admin.headers, project, to_csv(make_rows(40, seed=2)), dataset_id=dataset_id
    )
    assert second.status_code == 201, second.text
    assert second.json()["number"] == 2 and second.json()["row_count"] == 40
    detail = client.get(f"/v1/projects/{project}/datasets/{dataset_id}", headers=admin.headers)
    assert [v["number"] for v in detail.json()["versions"]] == [1, 2]
    assert detail.json()["latest_version"] == 2
