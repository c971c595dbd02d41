"""Migration 0010: per-version privacy budgets merge into one per dataset (spent ε summed,
the strictest declared total kept), and split back on downgrade."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

BEFORE = "0012_foureyes_accountable"
NOW = "2026-01-01 00:00:00"


@pytest.fixture
def engine(unmigrated_engine: Engine) -> Engine:
    return unmigrated_engine


def _insert(conn: Any, table: str, **values: Any) -> None:
    cols = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    conn.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({marks})"), values)


def _version(conn: Any, vid: str, dataset: str, number: int, total: float) -> None:
    empty = json.dumps({})
    _insert(
        conn,
        "dataset_versions",
        id=vid,
        dataset_id=dataset,
        project_id="prj",
        number=number,
        format="csv",
        digest="sha256:0",
        source_sha256="sha256:0",
        source_bytes=1,
        row_count=10,
        label_counts=empty,
        split=empty,
        declarations=empty,
        pii_scan=empty,
        epsilon_total=total,
        delta=1e-5,
        state="active",
        created_by="u",
        blob_key="k",
        blob_sha256="sha256:0",
        blob_bytes=1,
        data_key_id="dk",
        created_at=NOW,
        retention_until=NOW,
    )


def _budget(conn: Any, vid: str, total: float, reserved: float, charged: float) -> None:
    _insert(
        conn,
        "privacy_budgets",
        dataset_version_id=vid,
        project_id="prj",
        epsilon_total=total,
        delta=1e-5,
        epsilon_reserved=reserved,
        epsilon_charged=charged,
        updated_at=NOW,
    )


def _entry(conn: Any, eid: str, vid: str, job: str, kind: str, eps: float) -> None:
    _insert(
        conn,
        "privacy_budget_entries",
        id=eid,
        dataset_version_id=vid,
        project_id="prj",
        job_id=job,
        kind=kind,
        epsilon=eps,
        created_at=NOW,
    )


def _rows(engine: Engine, query: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(query)).all()]


def test_per_version_budgets_merge_per_dataset(engine: Engine) -> None:
    from privet import migrate

    migrate.upgrade(engine, BEFORE)
    with engine.begin() as conn:
        for ds in ("ds_a", "ds_b"):
            _insert(
                conn,
                "datasets",
                id=ds,
                project_id="prj",
                name=ds,
                description="",
                created_at=NOW,
                created_by="u",
                latest_version=2,
            )
        _version(conn, "dsv_a1", "ds_a", 1, 8.0)
        _version(conn, "dsv_a2", "ds_a", 2, 8.0)  # e.g. derived by an erasure: a fresh 8
        _version(conn, "dsv_a3", "ds_a", 3, 6.0)  # a later upload declared less, never used
        _version(conn, "dsv_b1", "ds_b", 1, 4.0)
        _budget(conn, "dsv_a1", 8.0, 0.0, 6.0)
        _budget(conn, "dsv_a2", 8.0, 1.0, 5.0)
        _budget(conn, "dsv_b1", 4.0, 0.0, 3.0)
        _entry(conn, "pbe1", "dsv_a1", "job1", "reserve", 6.0)
        _entry(conn, "pbe2", "dsv_a1", "job1", "charge", 6.0)
        _entry(conn, "pbe3", "dsv_a2", "job2", "reserve", 5.0)
        _entry(conn, "pbe4", "dsv_a2", "job2", "charge", 5.0)
        _entry(conn, "pbe5", "dsv_a2", "job3", "reserve", 1.0)
        _entry(conn, "pbe6", "dsv_b1", "job4", "reserve", 3.0)
        _entry(conn, "pbe7", "dsv_b1", "job4", "charge", 3.0)

    migrate.upgrade(engine)
    budgets = _rows(
        engine,
        "SELECT dataset_id, epsilon_total, epsilon_reserved, epsilon_charged "
        "FROM privacy_budgets ORDER BY dataset_id",
    )
    # ds_a: 11 spent of the strictest total 6 (overspent before the fix): nothing left.
    assert budgets == [("ds_a", 6.0, 1.0, 11.0), ("ds_b", 4.0, 0.0, 3.0)]
    entries = _rows(engine, "SELECT id, dataset_id FROM privacy_budget_entries ORDER BY id")
    assert [d for _, d in entries] == ["ds_a"] * 5 + ["ds_b"] * 2

    from sqlmodel import Session

    from privet.jobs import budget

    with Session(engine) as session:
        status = budget.budget_status(session, dataset_version_id="dsv_a3")
    assert status is not None and status.dataset_id == "ds_a"
    assert status.epsilon_remaining == 0 and len(status.entries) == 5

    _downgrade(engine)
    back = _rows(
        engine,
        "SELECT dataset_version_id, epsilon_total, epsilon_reserved, epsilon_charged "
        "FROM privacy_budgets ORDER BY dataset_version_id",
    )
    assert back == [
        ("dsv_a1", 8.0, 0.0, 6.0),
        ("dsv_a2", 8.0, 1.0, 5.0),
        ("dsv_b1", 4.0, 0.0, 3.0),
    ]


def _downgrade(engine: Engine) -> None:
    from alembic import command

    from privet.migrate import _config

    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
