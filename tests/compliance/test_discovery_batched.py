"""Discovery reads the data keys of every dataset version in a fixed number of statements
(issue 20): an access request on a project with more datasets runs no more SQL, so its
cost grows with the rows it decrypts and scans, not with database round trips. On SQLite
and PostgreSQL, through the API."""

from __future__ import annotations

from typing import Any

from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.statements import counted

__all__ = ["carry_out_request", "counted", "request_access"]


def request_access(client: Any, admin: Any, subject: str) -> dict[str, Any]:
    """An access request for ``subject``, carried out; its body."""
    return carry_out_request(client, admin, "access", subject)


def carry_out_request(client: Any, admin: Any, kind: str, subject: str) -> dict[str, Any]:
    """A data-subject request of ``kind`` for ``subject``, carried out (201); its body."""
    made = client.post(
        "/v1/data-subject-requests",
        json={"type": kind, "subject_id": subject},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


CONTROL = ("PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
TIMED = ("ledger_", "pg_try_advisory", "pg_snapshot_xmin", "auth_epoch")
"""Statements that come when a timer says, not per request: the ledger's sequencer
integrating (a thread of its own) and the identity cache's epoch check."""


def _requests(statements: list[str]) -> list[str]:
    """The request's own statements: not transaction control, nor the timed ones."""
    return [s for s in statements if not s.startswith(CONTROL) and not any(t in s for t in TIMED)]


def _key_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and "FROM data_keys" in s]


def _datasets(client: Any, admin: Any, project: str, names: range) -> list[str]:
    ids = []
    for i in names:
        rows = make_rows(6, seed=i)
        made = upload(client, admin.headers, project, to_csv(rows), decl=declarations(name=f"d{i}"))
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids


def test_access_request_statements_do_not_grow_with_datasets(
    client: Any, admin: Any, runtime: Any
) -> None:
    made = client.post("/v1/projects", json={"name": "many"}, headers=admin.headers)
    project = made.json()["id"]
    plain = declarations(
        name="plain", subject_id_column=None, contains_personal_data=False, data_categories=[]
    )
    content = to_csv(make_rows(6), columns=("text", "label"))
    made = upload(client, admin.headers, project, content, decl=plain)
    assert made.status_code == 201, made.text  # no subject ids: not decrypted at all

    found = _datasets(client, admin, project, range(2))
    request_access(client, admin, "cust-00001")  # warm: first-use reads (settings, keys)
    with counted(runtime.engine) as few:
        body = request_access(client, admin, "cust-00001")
    assert body["result"]["findings"]["dataset_versions"] == sorted(found)

    found += _datasets(client, admin, project, range(2, 14))
    with counted(runtime.engine) as many:
        body = request_access(client, admin, "cust-00001")
    assert body["result"]["findings"]["dataset_versions"] == sorted(found)
    assert len(_requests(many)) == len(_requests(few)), "\n".join(_requests(many))
    assert len(_key_reads(many)) == len(_key_reads(few)) == 2  # the request's own, the versions

    # a subject in none of them: every version is still read, and found in none
    with counted(runtime.engine) as none:
        body = request_access(client, admin, "nobody")
    assert body["result"]["findings"]["dataset_versions"] == []
    assert len(_requests(none)) <= len(_requests(few))
