"""Upload through the API in every format: counts, digests, split, declarations, reading back."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.datasets.conftest import (
    make_rows,
    to_csv,
    to_jsonl,
    to_parquet,
    to_tsv,
    upload,
)


def _canonical_digest(rows: list[dict]) -> str:
    data = b"".join(
        (
            json.dumps(
                [r["text"], r["label"], r["customer"]], ensure_ascii=False, separators=(",", ":")
            )
            + "\n"
        ).encode()
        for r in rows
    )
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("filename", "encode"),
    [
        ("loans.csv", to_csv),
        ("loans.tsv", to_tsv),
        ("loans.jsonl", to_jsonl),
        ("loans.parquet", to_parquet),
    ],
)
def test_upload_each_format_registers_same_content(
    client, admin, project, runtime, filename, encode
):  # type: ignore[no-untyped-def]
    rows = make_rows(60)
    response = upload(client, admin.headers, project, encode(rows), filename=filename)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["row_count"] == 60
    assert body["label_counts"] == {"0": 30, "1": 30}
    assert body["digest"] == _canonical_digest(rows)
    assert body["format"] == filename.rsplit(".", 1)[1]
    assert body["split"]["counts"] == {"train": 48, "validation": 6, "test": 6}
    assert body["declarations"]["purposes"] == ["credit_scoring"]
    assert body["epsilon_total"] == 8.0 and body["delta"] == 1e-5
    assert body["state"] == "active" and body["number"] == 1
    assert body["warnings"] == []
    # reading back for training: rows decrypted in memory, split recomputed and checked
    from privet.datasets.rows import load_version_rows
    from privet.db import session_scope

    with session_scope(runtime.engine) as session:
        loaded = load_version_rows(
            session, provider=runtime.key_provider, store=runtime.blobs, version_id=body["id"]
        )
    assert loaded.texts == [r["text"] for r in rows]
    assert loaded.subject_ids == [r["customer"] for r in rows]
    assert loaded.label_names == ["0", "1"]
    assert len(loaded.indices("test")) == 6
    # metadata-only reads
    listed = client.get(f"/v1/projects/{project}/datasets", headers=admin.headers).json()
    assert [d["name"] for d in listed] == ["loans"]
    detail = client.get(
        f"/v1/projects/{project}/datasets/{body['dataset_id']}", headers=admin.headers
    ).json()
    assert [v["id"] for v in detail["versions"]] == [body["id"]]
    assert rows[0]["text"] not in json.dumps(detail)
    by_number = client.get(
        f"/v1/projects/{project}/datasets/{body['dataset_id']}/versions/1", headers=admin.headers
    )
    assert by_number.json()["id"] == body["id"]
