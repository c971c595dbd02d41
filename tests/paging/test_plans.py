"""Every list that grows with traffic reads a page through an index, for each filter the
API offers, on PostgreSQL: ``EXPLAIN (FORMAT JSON)`` of the statement the service itself
builds (``events_statement``, ``jobs_statement``, ``requests_statement``,
``queue_statement``, ``versions_statement``), first page and a deep page, over tens of
thousands of rows that were ANALYZEd, so the planner has a real choice between an index
and a scan.

A plan passes when the filtered table is read through the index expected for the filter
(never a Seq Scan) and no Sort orders the rows: the index already returns them in the
list's order. A time window on the ledger (``since``/``until``) is read as the leaf-index
ranges that ``ledger_time_zones`` gives (privet.ledger.zones), each one a range of the
primary key (or of the filter's index), bounded by the range; PostgreSQL, which cannot
know that a range's times lie in the window, may read a narrow window's range by bitmap
and sort that range's leaves (never the table), before it joins the page's entries; see
docs/SCALING.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session

from privet.compliance.service import REQUEST_ORDER, requests_statement
from privet.db import create_db_engine
from privet.jobs.service import JOB_ORDER, jobs_statement
from privet.ledger.queries import events_statement, list_events
from privet.ledger.zones import ZONE_LEAVES, window_ranges
from privet.models.listing import VERSION_ORDER, versions_statement
from privet.monitoring.service import QUEUE_ORDER, queue_statement
from tests.paging.rows import T0, fill_ledger_pg, fill_lists, projects_of

pytestmark = pytest.mark.postgres

N = 30_000


@pytest.fixture(scope="module")
def pg(pg_database: Any) -> Iterator[Connection]:
    """One database filled once for the module (the tests only read it)."""
    engine: Engine = create_db_engine(pg_database.fresh())
    with engine.begin() as conn:
        fill_lists(conn, N)
        fill_ledger_pg(conn, N)
    with engine.connect() as conn:
        conn.execute(text("COMMIT"))
        conn.execute(text("ANALYZE"))
        yield conn
    engine.dispose()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def explain(conn: Connection, stmt: Any) -> list[dict[str, Any]]:
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params)
    return list(_nodes(plan.scalar()[0]["Plan"]))


def assert_indexed(conn: Connection, stmt: Any, *, table: str, index: str | set[str]) -> None:
    """``table`` is read through ``index`` and never scanned whole. A Sort is allowed only
    over rows an index condition bounded (the filter's matches: PostgreSQL sorts a few
    hundred matches rather than walk the index in order when that is cheaper), never over
    the table."""
    nodes = explain(conn, stmt)
    shown = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes]
    scans = [n for n in nodes if n.get("Relation Name") == table]
    assert scans, f"{table} is not read at all: {shown}"
    assert all(n["Node Type"] != "Seq Scan" for n in scans), f"Seq Scan on {table}: {shown}"
    wanted = {index} if isinstance(index, str) else index
    assert wanted & {n.get("Index Name") for n in nodes}, f"{index} not used: {shown}"
    if any(n["Node Type"] == "Sort" for n in nodes):
        bounded = all("Index Cond" in n or "Recheck Cond" in n for n in scans)
        assert bounded, f"a Sort over an unbounded read of {table}: {shown}"


# A filter that matches most of the log (``prediction.made``, the busy project) is read
# along the primary key, which is as good: the next 100 matches are among the next ~110
# leaves. The rarer a value, the more the dedicated index matters; these are rare.
LEDGER_FILTERS: list[tuple[dict[str, Any], str]] = [
    ({}, "ledger_leaves_pkey"),
    ({"type": "type.70"}, "ix_ledger_leaves_type_idx"),
    ({"project": "prj_30"}, "ix_ledger_leaves_project_idx"),
    ({"actor": "usr_42"}, "ix_ledger_leaves_actor_idx"),
    ({"object_id": "obj_1234"}, "ledger_leaf_objects_pkey"),
    ({"type": "type.70", "actor": "usr_70"}, "ix_ledger_leaves_type_idx"),
]


@pytest.mark.parametrize(("filters", "index"), LEDGER_FILTERS, ids=lambda v: str(v))
@pytest.mark.parametrize("start", [0, N // 2])
def test_audit_events_pages_use_an_index(
    pg: Connection, filters: dict[str, Any], index: str, start: int
) -> None:
    stmt = events_statement(**filters, start=start, limit=100)
    table = "ledger_leaf_objects" if "object_id" in filters else "ledger_leaves"
    assert_indexed(pg, stmt, table=table, index=index)


@pytest.mark.parametrize(
    "window",
    [
        {"since": T0 + timedelta(seconds=N - 500)},
        {"until": T0 + timedelta(seconds=500)},
        {"since": T0 + timedelta(seconds=1000), "until": T0 + timedelta(seconds=1300)},
        {"since": T0 + timedelta(seconds=N // 2), "type": "type.70"},
        {"since": T0 + timedelta(seconds=N // 2), "object_id": "obj_6000"},
    ],
    ids=["since", "until", "window", "since+type", "since+object"],
)
@pytest.mark.parametrize("start", [0, N // 2])
def test_audit_event_time_windows_read_leaf_ranges(
    pg: Connection, window: dict[str, Any], start: int
) -> None:
    since, until = window.get("since"), window.get("until")
    ranges = list(window_ranges(pg, since=since, until=until, start=start))
    assert ranges, "a window always reads at least the tail"
    # leaf i holds time T0 + i + 1 s: the ranges hold the window's leaves, the blocks at
    # its two ends and the tail, not the log
    first = max(start, int((since - T0).total_seconds()) - 1 if since else 0)
    last = int((until - T0).total_seconds()) if until else N
    covered = sum(min(hi or N, N) - lo for lo, hi in ranges)
    assert covered <= max(0, last - first) + 3 * ZONE_LEAVES, ranges
    index = "ledger_leaves_pkey"
    if "type" in window:
        index = "ix_ledger_leaves_type_idx"
    if "object_id" in window:
        index = "ledger_leaf_objects_pkey"
    table = "ledger_leaf_objects" if "object_id" in window else "ledger_leaves"
    for lo, hi in ranges[:3]:
        stmt = events_statement(**window, start=lo, below=hi, limit=100)
        assert_indexed(pg, stmt, table=table, index=index)


def _mid(order: Any, key: tuple[Any, ...]) -> str:
    return str(order.encode(key))


MID = T0 + timedelta(seconds=N // 2)


@pytest.mark.parametrize("state", [None, "failed"])
@pytest.mark.parametrize("deep", [False, True])
def test_job_pages_use_an_index(pg: Connection, state: str | None, deep: bool) -> None:
    after = _mid(JOB_ORDER, (MID, "job_00015000")) if deep else None
    stmt = jobs_statement(project_id="prj_30", state=state, after=after, limit=100)
    index = (
        "ix_training_jobs_project_state_created" if state else "ix_training_jobs_project_created"
    )
    assert_indexed(pg, stmt, table="training_jobs", index=index)


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "ix_data_subject_requests_received"),
        ({"type": "erasure"}, "ix_data_subject_requests_type_received"),
        ({"state": "refused"}, "ix_data_subject_requests_state_received"),
        ({"since": MID}, "ix_data_subject_requests_received"),
        ({"until": MID}, "ix_data_subject_requests_received"),
    ],
    ids=lambda v: str(v),
)
@pytest.mark.parametrize("deep", [False, True])
def test_request_pages_use_an_index(
    pg: Connection, filters: dict[str, Any], index: str, deep: bool
) -> None:
    after = _mid(REQUEST_ORDER, (MID, "dsr_00015000")) if deep else None
    stmt = requests_statement(**filters, after=after, limit=100)
    assert_indexed(pg, stmt, table="data_subject_requests", index=index)


@pytest.mark.parametrize("status", ["open", "closed", "all"])
@pytest.mark.parametrize("deep", [False, True])
def test_review_queue_pages_use_an_index(pg: Connection, status: str, deep: bool) -> None:
    after = _mid(QUEUE_ORDER, (MID, "prd_00015000")) if deep else None
    stmt = queue_statement(project_id="prj_30", status=status, after=after, limit=100)
    index = {"ix_prediction_decisions_project_created"}
    if status == "closed":  # or from each closing review to its item, by primary key
        index.add("prediction_decisions_pkey")
    assert_indexed(pg, stmt, table="prediction_decisions", index=index)


def test_a_window_page_is_planned_for_its_values(pg: Connection) -> None:
    """psycopg prepares a statement run five times on a connection; PostgreSQL then kept
    one generic plan for a window's range reads, which walked the primary key past every
    leaf of a range to find a rare type's few (docs/SCALING.md, "Time windows at 10^6").
    Read the same window page many times: every range read is planned for its values."""
    since = T0 + timedelta(seconds=N // 2)
    with pg.engine.connect() as conn, Session(bind=conn) as session:
        for _ in range(20):
            page = list_events(session=session, since=since, type="type.70", limit=100)
        generic, custom = conn.execute(
            text(
                "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) "
                "FROM pg_prepared_statements WHERE statement LIKE :read"
            ),
            {"read": "%ledger_leaves.event_time >=%"},
        ).one()
    assert page.items and all(e.event == {} for e in page.items)
    assert custom > 0, "the range reads were never prepared: the test shows nothing"
    assert generic == 0, f"{generic} range reads ran on a generic plan"


ALL_PROJECTS = projects_of(N)


CREATED, STATE, PROJECT = (
    "ix_model_versions_created",
    "ix_model_versions_state_created",
    "ix_model_versions_project_created",
)


@pytest.mark.parametrize(
    ("projects", "states", "index"),
    [
        # Models as an administrator sees it: every project, newest first
        (ALL_PROJECTS, (), {CREATED}),
        # Home's candidates (a rare state), Monitoring's versions in service
        (ALL_PROJECTS, ("candidate",), {STATE}),
        (ALL_PROJECTS, ("approved", "suspended"), {CREATED, STATE}),
        # a member of one project, busy or not
        (["prj_0"], (), {CREATED, PROJECT}),
        (["prj_0"], ("candidate",), {STATE, PROJECT}),
        (["prj_30"], (), {PROJECT}),
        # a few rare projects: their ~150 versions each found by project, then sorted
        (["prj_30", "prj_40"], (), {CREATED, PROJECT}),
    ],
    ids=["all", "all+candidate", "all+in-service", "busy", "busy+candidate", "rare", "two-rare"],
)
@pytest.mark.parametrize("deep", [False, True])
def test_model_version_pages_use_an_index(
    pg: Connection, projects: list[str], states: tuple[str, ...], index: set[str], deep: bool
) -> None:
    after = _mid(VERSION_ORDER, (MID, "mv_00015000")) if deep else None
    stmt = versions_statement(project_ids=projects, states=states, after=after, limit=20)
    assert_indexed(pg, stmt, table="model_versions", index=index)
    if len(projects) != 2 and not states:  # the index's order: nothing sorted
        nodes = explain(pg, stmt)
        assert all(n["Node Type"] != "Sort" for n in nodes), nodes
