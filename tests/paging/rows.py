"""Rows for the list tests, written straight into the tables (the plan tests need tens of
thousands; the admission, DSR and prediction flows would take minutes to make them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, text

from privet.compliance.tables import DataSubjectRequest
from privet.jobs.tables import TrainingJob
from privet.ledger.zones import ZONE_LEAVES
from privet.models.tables import Model, ModelVersion
from privet.monitoring.tables import PredictionDecision

T0 = datetime(2026, 1, 1, tzinfo=UTC)
JOB_STATES = ("succeeded", "queued", "running", "failed", "cancelled")
DSR_TYPES = ("access", "erasure", "objection")
DSR_STATES = ("completed", "received", "acknowledged", "refused")
VERSION_STATES = ("retired", "candidate", "approved", "suspended")


def _project(i: int) -> str:
    """Nine rows in ten belong to one busy project; the rest spread over 200 others."""
    return "prj_0" if i % 10 else f"prj_{i % 200}"


def projects_of(n: int) -> list[str]:
    """The projects ``n`` rows spread over."""
    return sorted({_project(i) for i in range(n)})


def _pick(values: tuple[str, ...], i: int) -> str:
    """The first value for nine rows in ten; the others share the tenth."""
    return values[0] if i % 10 else values[1 + (i // 10) % (len(values) - 1)]


def _at(i: int) -> datetime:
    # every 7th row shares its second with the one before: ties exercise the tie-break
    return T0 + timedelta(seconds=i - (i % 7 == 0))


def job_row(i: int, *, project: str | None = None, tag: str = "") -> dict[str, Any]:
    return {
        "id": f"job_{tag}{i:08d}",
        "project_id": project or _project(i),
        "dataset_version_id": "dsv_x",
        "model_name": "m",
        "base_model": "tiny",
        "purpose": "credit-scoring",
        "private": True,
        "params": {},
        "state": _pick(JOB_STATES, i),
        "submitted_by": "User:usr_x",
        "submitted_by_id": "usr_x",
        "created_at": _at(i),
        "progress": {},
    }


def dsr_row(i: int, *, tag: str = "") -> dict[str, Any]:
    return {
        "id": f"dsr_{tag}{i:08d}",
        "type": _pick(DSR_TYPES, i),
        "regime": "gdpr",
        "state": _pick(DSR_STATES, i),
        "channel": "web",
        "subject_digest": f"sd_{i}",
        "purposes": [],
        "received_at": _at(i),
        "due_at": _at(i) + timedelta(days=30),
        "retain_until": _at(i) + timedelta(days=800),
        "submitted_by": "usr_x",
        "result": {},
        "created_at": _at(i),
    }


def decision_row(i: int, *, project: str | None = None, tag: str = "") -> dict[str, Any]:
    return {
        "prediction_id": f"prd_{tag}{i:08d}",
        "project_id": project or _project(i),
        "model_version_id": "mv_x",
        "status": "refer",
        "rules": [],
        "label": "reject",
        "score_ppm": 500_000,
        "purpose": "credit-scoring",
        "created_at": _at(i),
    }


def version_row(i: int) -> dict[str, Any]:
    """A model version; its state is picked apart from its project (``i // 7``), so that
    the busy project and the rare ones both hold every state."""
    project = _project(i)
    return {
        "id": f"mv_{i:08d}",
        "model_id": f"mdl_{project}",
        "project_id": project,
        "number": i,
        "state": _pick(VERSION_STATES, i // 7),
        "job_id": f"job_{i:08d}",
        "submitted_by": "User:usr_x",
        "base_model": "tiny",
        "base_model_sha256": "sha256:x",
        "label_names": ["a", "b"],
        "purposes": ["credit-scoring"],
        "dataset_versions": [],
        "private": True,
        "metrics": {},
        "training": {},
        "lineage": {},
        "weights_sha256": "sha256:x",
        "weights_bytes": 1,
        "card": "",
        "blob_key": "k",
        "data_key_id": "dk_x",
        "created_at": _at(i),
    }


def insert_rows(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        conn.execute(insert(table), rows[start : start + 5000])


def fill_lists(conn: Connection, n: int) -> None:
    """``n`` jobs, requests, queue items and model versions, skewed the way real lists are: one busy
    project, one common state or type, the others rare."""
    insert_rows(conn, TrainingJob, [job_row(i) for i in range(n)])
    insert_rows(conn, DataSubjectRequest, [dsr_row(i) for i in range(n)])
    insert_rows(conn, PredictionDecision, [decision_row(i) for i in range(n)])
    models = [
        {
            "id": f"mdl_{p}",
            "project_id": p,
            "name": "m",
            "created_at": T0,
            "created_by": "usr_x",
            "latest_version": 0,
        }
        for p in projects_of(n)
    ]
    insert_rows(conn, Model, models)
    insert_rows(conn, ModelVersion, [version_row(i) for i in range(n)])


def fill_ledger_pg(conn: Connection, n: int) -> None:
    """``n`` integrated leaves on PostgreSQL (SQL only: the plan test needs many, and the
    plan depends on the rows' shape, not on how they were signed). Shaped like a bank's
    log: nine leaves in ten are ``prediction.made`` in one busy project, the rest spread
    over 40 other types and 20 projects; 300 actors, one event a second, three leaves per
    object."""
    conn.execute(
        text(
            "INSERT INTO ledger_entries (event, created_at) "
            "SELECT convert_to('{}', 'UTF8'), now() FROM generate_series(1, :n)"
        ),
        {"n": n},
    )
    conn.execute(
        text(
            "INSERT INTO ledger_leaves "
            "(idx, entry_id, leaf_hash, type, project, actor, event_time, integrated_at) "
            "SELECT row_number() OVER (ORDER BY id) - 1, id, sha256(int8send(id)), "
            "CASE WHEN id % 10 > 0 THEN 'prediction.made' ELSE 'type.' || (id % 400) END, "
            "CASE WHEN id % 10 > 0 THEN 'prj_0' ELSE 'prj_' || (id % 200) END, "
            "'usr_' || (id % 300), "
            ":t0 + id * interval '1 second', now() FROM ledger_entries"
        ),
        {"t0": T0},
    )
    conn.execute(
        text(
            "INSERT INTO ledger_leaf_objects (object_id, leaf_idx, kind) "
            "SELECT 'obj_' || (idx / 3), idx, 'x' FROM ledger_leaves"
        )
    )
    conn.execute(  # what the sequencer writes for every complete block (zones.py)
        text(
            "INSERT INTO ledger_time_zones (block, time_min, time_max) "
            "SELECT idx / :b, min(event_time), max(event_time) FROM ledger_leaves "
            "WHERE idx < :n / :b * :b GROUP BY idx / :b"
        ),
        {"b": ZONE_LEAVES, "n": n},
    )
