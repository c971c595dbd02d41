"""Migration 0024: licences recorded before it are sorted with the service's check: a
valid SPDX expression is normalised in place, anything else becomes `licence_text`.
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

BEFORE = "0023_console_oidc"


@pytest.fixture
def engine(unmigrated_engine: Engine) -> Engine:
    return unmigrated_engine


def _row(conn: Any, row_id: str, licence: str) -> None:
    values = {
        "id": row_id,
        "name": row_id,
        "state": "active",
        "path": f"/models/{row_id}",
        "digests": json.dumps({"config.json": "0" * 64}),
        "sizes": json.dumps({"config.json": 2}),
        "model_type": "bert",
        "architecture": "BertModel",
        "vocab_size": 10,
        "vocab_coverage": json.dumps({}),
        "max_positions": 64,
        "pooling": "cls",
        "pooling_source": "test",
        "license": licence,
        "description": "",
        "registered_by": "prn_test",
        "registered_at": "2026-12-01 00:00:00",
    }
    cols = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    conn.execute(text(f"INSERT INTO base_models ({cols}) VALUES ({marks})"), values)


def test_licences_are_sorted_into_spdx_and_text(engine: Engine) -> None:
    from privet import migrate

    migrate.upgrade(engine, BEFORE)
    words = "Acme model terms.\nInternal use only."
    with engine.begin() as conn:
        _row(conn, "bm_mit", "mit")
        _row(conn, "bm_dual", "MIT OR apache-2.0")
        _row(conn, "bm_text", words)
        _row(conn, "bm_other", "other")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, license, licence_text FROM base_models ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("bm_dual", "MIT OR Apache-2.0", None),
        ("bm_minilm-l6", "Apache-2.0", None),  # the shipped entry (migration 0019)
        ("bm_mit", "MIT", None),
        ("bm_other", None, "other"),
        ("bm_text", None, words),
    ]
