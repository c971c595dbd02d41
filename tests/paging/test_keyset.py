"""Keyset paging on SQLite and PostgreSQL: every row exactly once across pages, in a
stable order, while other transactions insert; pages followed over HTTP (the Link header
of bare-array lists, ``next`` of the review queue, ``next_start`` of audit events)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from privet.compliance.service import page_requests
from privet.compliance.tables import DataSubjectRequest
from privet.db import create_db_engine, session_scope
from privet.jobs.service import list_jobs
from privet.jobs.tables import TrainingJob
from privet.kit.paging import Page
from privet.ledger import queries
from privet.ledger.emit import EventSpec, emit_many
from privet.ledger.sequencer import integrate_now
from privet.monitoring.service import review_queue
from privet.monitoring.tables import PredictionDecision
from tests.paging.rows import decision_row, dsr_row, insert_rows, job_row

SEEDED = 60
PAGE = 7


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


def _jobs(session: Session, after: str | None) -> Page[Any]:
    return list_jobs(session, project_id="prj_p", after=after, limit=PAGE)


def _requests(session: Session, after: str | None) -> Page[Any]:
    return page_requests(session, after=after, limit=PAGE)


def _queue(session: Session, after: str | None) -> Page[Any]:
    queue = review_queue(session, project_id="prj_p", status="all", after=after, limit=PAGE)
    return Page([i.prediction_id for i in queue.items], queue.next)


LISTS: dict[str, tuple[Any, Callable[..., dict[str, Any]], Callable[..., Page[Any]], str, bool]] = {
    "jobs": (TrainingJob, job_row, _jobs, "id", True),
    "requests": (DataSubjectRequest, dsr_row, _requests, "id", True),
    "review-queue": (PredictionDecision, decision_row, _queue, "prediction_id", False),
}


def _row(make: Callable[..., dict[str, Any]], i: int, tag: str) -> dict[str, Any]:
    row = make(i, tag=tag) if make is dsr_row else make(i, project="prj_p", tag=tag)
    return row


@pytest.mark.parametrize("name", list(LISTS))
def test_every_row_once_in_order_while_rows_are_inserted(engine: Engine, name: str) -> None:
    table, make, page_of, key, newest_first = LISTS[name]
    with engine.begin() as conn:
        insert_rows(conn, table, [_row(make, i, "a") for i in range(SEEDED)])
    seeded = {_row(make, i, "a")[key] for i in range(SEEDED)}
    stop = threading.Event()

    def writer() -> None:  # new rows keep arriving, newer than every seeded one
        i = SEEDED
        while not stop.is_set() and i < SEEDED + 400:
            with engine.begin() as conn:
                insert_rows(conn, table, [_row(make, i + 10_000, "b")])
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[Any] = []
    after: str | None = None
    try:
        while True:
            with Session(engine) as session:
                page = page_of(session, after)
            seen += [r if isinstance(r, str) else getattr(r, key) for r in page.items]
            if page.next is None:
                break
            after = page.next
    finally:
        stop.set()
        thread.join()
    assert len(seen) == len(set(seen)), "a row came twice"
    assert seeded <= set(seen), f"rows skipped: {sorted(seeded - set(seen))[:5]}"
    # stable order: the seeded rows come in key order (ties on time broken by id)
    keys = [_row(make, i, "a") for i in range(SEEDED)]
    time_col = next(c for c in ("created_at", "received_at") if c in keys[0])
    expected = sorted(keys, key=lambda r: (r[time_col], r[key]), reverse=newest_first)
    assert [s for s in seen if s in seeded] == [r[key] for r in expected]


def test_audit_events_every_leaf_once_while_events_are_appended(runtime: Any) -> None:
    engine = runtime.engine

    def append(n: int, start: int) -> None:
        with session_scope(engine) as session:
            emit_many(
                session,
                [EventSpec("test.paging", None, None, {"n": f"e{start + i}"}) for i in range(n)],
            )

    append(50, 0)
    integrate_now(engine)
    stop = threading.Event()

    def writer() -> None:
        for k in range(40):
            if stop.is_set():
                return
            append(3, 1000 + 3 * k)
            integrate_now(engine)

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[int] = []
    start = 0
    try:
        while True:
            with Session(engine) as session:
                page = queries.list_events(session=session, start=start, limit=PAGE)
            seen += [e.index for e in page.items]
            if page.next_start is not None:
                start = page.next_start
                continue
            if not thread.is_alive():
                break
            # the end of the log for now: wait for the writer, then read on from here
            start = seen[-1] + 1 if seen else start
            thread.join()
            integrate_now(engine)
    finally:
        stop.set()
        thread.join()
    with Session(engine) as session:
        size = queries.list_events(session=session, limit=1).tree_size
    assert seen == list(range(size)), "every leaf exactly once, in index order"


# --- over HTTP ---------------------------------------------------------------------------


def _project(client: Any, admin: Any) -> str:
    response = client.post("/v1/projects", json={"name": "paged"}, headers=admin.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _follow(client: Any, admin: Any, url: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = client.get(next_url, headers=admin.headers)
        assert response.status_code == 200, response.text
        rows += response.json()
        next_url = response.links.get("next", {}).get("url")
    return rows


def test_bare_array_lists_page_through_the_link_header(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    project = _project(client, admin)
    with runtime.engine.begin() as conn:
        insert_rows(conn, TrainingJob, [job_row(i, project=project) for i in range(25)])
        insert_rows(conn, DataSubjectRequest, [dsr_row(i) for i in range(25)])
    jobs = _follow(client, admin, f"/v1/projects/{project}/training-jobs?limit=10")
    assert [j["id"] for j in jobs] == [f"job_{i:08d}" for i in reversed(range(25))]
    erasures = _follow(client, admin, "/v1/data-subject-requests?limit=4&type=erasure")
    assert erasures and all(r["type"] == "erasure" for r in erasures)
    assert len(erasures) == sum(dsr_row(i)["type"] == "erasure" for i in range(25))
    last = client.get(f"/v1/projects/{project}/training-jobs?limit=25", headers=admin.headers)
    assert "link" not in last.headers


def test_review_queue_pages_through_next(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    project = _project(client, admin)
    with runtime.engine.begin() as conn:
        insert_rows(conn, PredictionDecision, [decision_row(i, project=project) for i in range(9)])
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"after": after} if after else {})}
        body = client.get(
            f"/v1/projects/{project}/review-queue", params=params, headers=admin.headers
        ).json()
        assert body["open"] == 9
        seen += [i["prediction_id"] for i in body["items"]]
        if body["next"] is None:
            break
        after = body["next"]
    assert seen == [f"prd_{i:08d}" for i in range(9)]


# --- hostile cursors ----------------------------------------------------------------------

CURSORS = ["٣", "-1", "abc", "x" * 500, "WzEsMiwzXQ", "WyJub3QgYSBkYXRlIiwieCJd", "", "%00"]
"""Eastern Arabic three, negative, not base64, too long, [1,2,3], ["not a date","x"],
empty, a NUL."""


@pytest.mark.parametrize("cursor", CURSORS)
def test_a_hostile_cursor_is_a_4xx_naming_the_rule(client, admin, cursor: str) -> None:  # type: ignore[no-untyped-def]
    project = _project(client, admin)
    for path in (
        f"/v1/projects/{project}/training-jobs",
        "/v1/data-subject-requests",
        f"/v1/projects/{project}/review-queue",
    ):
        response = client.get(path, params={"after": cursor}, headers=admin.headers)
        assert response.status_code == 422, (path, response.text)
        assert "cursor" in response.json()["detail"], response.text


@pytest.mark.parametrize(
    ("start", "rule"),
    [
        ("-1", "ASCII digits"),
        ("abc", "ASCII digits"),
        ("٣", "ASCII digits"),
        ("9" * 19, "ASCII digits"),
    ],
)
def test_a_hostile_event_start_is_a_4xx_naming_the_rule(
    client, admin, start: str, rule: str
) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/v1/audit/events", params={"start": start}, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert rule in response.text


def test_a_start_past_the_log_is_an_empty_last_page(client, admin) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/v1/audit/events", params={"start": "9" * 18}, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["items"] == [] and response.json()["next_start"] is None


@pytest.mark.parametrize("limit", ["0", "1001", "٣", "-5"])
def test_a_page_size_out_of_bounds_is_a_4xx(client, admin, limit: str) -> None:  # type: ignore[no-untyped-def]
    project = _project(client, admin)
    for path in (
        "/v1/audit/events",
        f"/v1/projects/{project}/training-jobs",
        "/v1/data-subject-requests",
        f"/v1/projects/{project}/review-queue",
    ):
        response = client.get(path, params={"limit": limit}, headers=admin.headers)
        assert response.status_code == 422, (path, response.text)
