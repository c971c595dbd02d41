"""Helpers for dataset tests: a project, declarations, and generated files in every format."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

WORDS = (
    "loan application approved denied income rent employer balance late payment claim "
    "policy car house repair water damage complaint branch service fee account card"
).split()


def declarations(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "loans",
        "text_column": "text",
        "label_column": "label",
        "subject_id_column": "customer",
        "contains_personal_data": True,
        "data_categories": ["financial"],
        "purposes": ["credit_scoring"],
        "legal_basis": "contract",
        "retention_days": 365,
        "privacy_budget": {"epsilon_total": 8.0, "delta": 1e-5},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def reader_declarations(**overrides: Any) -> Any:
    """The fewest validated declarations a reader needs (no personal data): ``Declarations``."""
    from privet.datasets.schemas import Declarations

    base: dict[str, Any] = {
        "text_column": "text",
        "label_column": "label",
        "contains_personal_data": False,
        "purposes": ["x"],
        "legal_basis": "consent",
        "retention_days": 1,
    }
    base.update(overrides)
    return Declarations.model_validate(base)


def make_rows(n: int = 60, *, seed: int = 1, labels: tuple[str, ...] = ("0", "1")) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))),
            "label": labels[i % len(labels)],
            "customer": f"cust-{i:05d}",
        }
        for i in range(n)
    ]


def to_csv(rows: list[dict], columns: tuple[str, ...] = ("text", "label", "customer")) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns])
    return out.getvalue().encode()


def to_tsv(rows: list[dict], columns: tuple[str, ...] = ("label", "text", "customer")) -> bytes:
    lines = ["\t".join(columns)] + ["\t".join(str(r[c]) for c in columns) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def to_jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def to_parquet(rows: list[dict], *, row_group_size: int = 16) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({k: [r[k] for r in rows] for k in ("text", "label", "customer")})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def upload(
    client: Any,
    headers: dict[str, str] | None,
    project_id: str,
    content: bytes,
    *,
    filename: str = "loans.csv",
    content_type: str = "application/octet-stream",
    decl: dict[str, Any] | None = None,
    dataset_id: str | None = None,
) -> Any:
    """POST a dataset (or, with ``dataset_id``, its next version) as multipart: the
    declarations and the file. ``headers`` None: the client's own (an httpx client to a
    server, already keyed)."""
    path = f"/v1/projects/{project_id}/datasets"
    if dataset_id is not None:
        path += f"/{dataset_id}/versions"
    files = {
        "declarations": (None, json.dumps(decl or declarations()), "application/json"),
        "file": (filename, content, content_type),
    }
    return client.post(path, files=files, headers=headers)


@pytest.fixture
def project(client, admin) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/v1/projects", json={"name": "credit"}, headers=admin.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
