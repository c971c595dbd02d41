"""The group-commit appender: many callers' events per durable transaction, on SQLite and
PostgreSQL. Concurrent callers end with dense indexes and a consistent tree; a failing
batch fails exactly its callers and writes none of its events; stop() drains; an append
is committed when append_durable returns."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from privet.db import create_db_engine, is_sqlite, session_scope
from privet.ledger import (
    EventSpec,
    LedgerEventError,
    append_durable,
    append_durable_many,
    append_durable_many_async,
)
from privet.ledger.appender import (
    AppenderClosed,
    GroupCommitAppender,
    LedgerAppendError,
    get_appender,
    stop_appender,
)
from privet.ledger.sequencer import Ledger
from privet.ledger.settings import LedgerSettings
from privet.ledger.verify import verify_ledger
from tests.own_thread import in_own_thread


def _entries(engine: Engine) -> dict[int, dict]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, event FROM ledger_entries ORDER BY id")).all()
    return {int(r[0]): json.loads(bytes(r[1])) for r in rows}


def _spec(n: int, type: str = "test.append", actor: str = "prn_t") -> EventSpec:
    return EventSpec(type, actor, details={"n": n})


@pytest.fixture
def appender(engine: Engine) -> Iterator[GroupCommitAppender]:
    """A held appender: appends queue until start(), so a test decides what a batch is."""
    app = GroupCommitAppender(engine, LedgerSettings(group_commit_max_batch=6), start=False)
    yield app
    app.stop()


def test_many_threads_end_with_dense_indexes_and_a_consistent_tree(
    engine: Engine, ledger: Ledger
) -> None:
    threads, per_thread = 16, 40
    got: dict[int, list[int]] = {}
    errors: list[str] = []
    go = threading.Event()

    def caller(t: int) -> None:
        go.wait()
        mine = []
        for i in range(per_thread):
            try:
                mine.append(
                    append_durable(engine, EventSpec("test.append", f"prn_t{t}", details={"i": i}))
                )
            except Exception as exc:  # reported below
                errors.append(repr(exc))
        got[t] = mine

    pool = [threading.Thread(target=caller, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    go.set()
    for th in pool:
        th.join(120)
    appender = get_appender(engine)
    stop_appender(engine)
    assert not errors, errors[:3]
    ids = [i for mine in got.values() for i in mine]
    assert len(ids) == len(set(ids)) == threads * per_thread
    # group commit happened: fewer durable commits than appends
    assert appender.batches < len(ids) and appender.largest_batch > 1
    # each caller's appends are in the log in the order they returned
    entries = _entries(engine)
    for t, mine in got.items():
        assert mine == sorted(mine)
        assert [entries[i]["details"]["i"] for i in mine] == list(range(per_thread))
        assert {entries[i]["actor"] for i in mine} == {f"prn_t{t}"}
    assert set(entries) == set(ids)

    head = ledger.integrate_now()
    assert head.size == len(ids)
    with engine.connect() as conn:
        leaves = conn.execute(text("SELECT idx, entry_id FROM ledger_leaves ORDER BY idx")).all()
    assert [int(r[0]) for r in leaves] == list(range(len(ids)))  # dense, no fork
    assert sorted(int(r[1]) for r in leaves) == sorted(ids)  # each entry exactly once
    with session_scope(engine) as s:
        report = verify_ledger(session=s, trusted_checkpoint=head.checkpoint_note)
    assert report.ok, report.message


def test_a_batch_is_written_in_arrival_order_and_callers_get_their_own_ids(
    engine: Engine, appender: GroupCommitAppender
) -> None:
    units = [[1, 2], [3], [4, 5, 6], [7]]  # at most 6 events a batch: 1-6, then 7
    handles = [appender.submit([_spec(n) for n in unit]) for unit in units]
    appender.start()
    got = [h.result(30) for h in handles]
    assert [len(ids) for ids in got] == [2, 1, 3, 1]
    flat = [i for ids in got for i in ids]
    assert flat == sorted(flat)
    entries = _entries(engine)
    assert [entries[i]["details"]["n"] for i in flat] == [1, 2, 3, 4, 5, 6, 7]
    assert appender.batches == 2 and appender.largest_batch == 6


def test_an_invalid_event_fails_its_own_caller_at_once_and_nobody_else(
    engine: Engine, appender: GroupCommitAppender
) -> None:
    good = appender.submit([_spec(1)])
    with pytest.raises(LedgerEventError, match="float"):
        appender.submit([_spec(2), EventSpec("test.append", "prn_t", details={"x": 1.5})])
    with pytest.raises(LedgerEventError):
        append_durable(engine, EventSpec("NoDots", "prn_t"))
    appender.start()
    [entry_id] = good.result(30)
    assert list(_entries(engine)) == [entry_id]  # only the good one; nothing of the bad call


@pytest.fixture
def poison(engine: Engine) -> Iterator[None]:
    """A database trigger that fails any insert of a ``test.poison`` event: a database
    error in the middle of a batch's statement (after the rows before it went in)."""
    if is_sqlite(engine):
        create = [
            "CREATE TRIGGER test_poison BEFORE INSERT ON ledger_entries "
            "WHEN instr(CAST(NEW.event AS TEXT), 'test.poison') > 0 "
            "BEGIN SELECT RAISE(ABORT, 'poisoned event'); END"
        ]
        drop = ["DROP TRIGGER IF EXISTS test_poison"]
    else:
        create = [
            "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF position('test.poison' in convert_from(NEW.event, 'UTF8')) > 0 THEN "
            "RAISE EXCEPTION 'poisoned event'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER test_poison BEFORE INSERT ON ledger_entries "
            "FOR EACH ROW EXECUTE FUNCTION test_poison()",
        ]
        drop = [
            "DROP TRIGGER IF EXISTS test_poison ON ledger_entries",
            "DROP FUNCTION IF EXISTS test_poison()",
        ]
    with engine.begin() as conn:
        for statement in create:
            conn.execute(text(statement))
    try:
        yield
    finally:
        with engine.begin() as conn:
            for statement in drop:
                conn.execute(text(statement))


def test_a_failing_batch_fails_exactly_its_callers_and_writes_none_of_it(
    engine: Engine, appender: GroupCommitAppender, poison: None
) -> None:
    # batch 1 (max 6 events): five good appends, then the poisoned one
    first = [appender.submit([_spec(i)]) for i in range(5)]
    bad = appender.submit([EventSpec("test.poison", "prn_t")])
    # batch 2: four good appends
    second = [appender.submit([_spec(10 + i)]) for i in range(4)]
    appender.start()
    for handle in [*first, bad]:
        with pytest.raises(LedgerAppendError, match="rolled back") as info:
            handle.result(30)
        assert "poisoned event" in str(info.value.__cause__)
    ids = [h.result(30)[0] for h in second]
    entries = _entries(engine)
    assert sorted(entries) == sorted(ids)  # nothing of batch 1, all of batch 2
    assert [entries[i]["details"]["n"] for i in ids] == [10, 11, 12, 13]
    assert appender.failed_batches == 1 and appender.batches == 1
    # and the appender goes on working
    assert len(appender.append([_spec(20)], timeout=30)) == 1


def _impatient_engine(db_url: str) -> Engine:
    """The platform's engine, but its connections give up on a lock after 100 ms."""
    from sqlalchemy import event

    eng = create_db_engine(db_url)
    sqlite = is_sqlite(eng)

    @event.listens_for(eng, "connect")
    def _impatient(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA busy_timeout = 100" if sqlite else "SET lock_timeout = '100ms'")
        cur.close()
        if not sqlite:
            dbapi_connection.commit()

    return eng


def test_a_locked_database_fails_the_batch_then_the_next_one_succeeds(
    engine: Engine, db_url: str
) -> None:
    """Another connection holds the database (SQLite: its write lock; PostgreSQL: an
    exclusive lock on the entries table) past the writer's lock timeout."""
    impatient = _impatient_engine(db_url)
    app = GroupCommitAppender(impatient, LedgerSettings(), start=False)
    try:
        with engine.connect() as holder:
            if is_sqlite(engine):
                holder.exec_driver_sql("SELECT 1")  # the engine begins with BEGIN IMMEDIATE
            else:
                holder.execute(text("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE"))
            handles = [app.submit([_spec(i)]) for i in range(3)]
            app.start()
            for handle in handles:
                with pytest.raises(LedgerAppendError, match="rolled back"):
                    handle.result(30)
            holder.rollback()
        ids = app.append([_spec(99)], timeout=30)
    finally:
        app.stop()
        impatient.dispose()
    assert list(_entries(engine)) == ids
    assert app.failed_batches == 1 and app.batches == 1


def test_stop_drains_what_is_queued_then_refuses(
    engine: Engine, appender: GroupCommitAppender
) -> None:
    handles = [appender.submit([_spec(i)]) for i in range(20)]
    assert not any(h.done() for h in handles)
    appender.stop()  # never started: stop() writes the queue before it returns
    assert all(h.done() for h in handles)
    ids = [h.result(0)[0] for h in handles]
    assert sorted(_entries(engine)) == ids
    with pytest.raises(AppenderClosed):
        appender.submit([_spec(0)])


def test_stop_while_callers_append_loses_nothing(engine: Engine) -> None:
    answered: list[int] = []
    refused: list[str] = []
    stop = threading.Event()

    def caller() -> None:
        app = get_appender(engine)
        while not stop.is_set():
            try:
                answered.extend(app.append([_spec(len(answered))], timeout=30))
            except AppenderClosed:
                refused.append("closed")
                return

    pool = [threading.Thread(target=caller) for _ in range(8)]
    for th in pool:
        th.start()
    time.sleep(0.5)
    stop_appender(engine)  # drains: every append already queued is written and answered
    stop.set()
    for th in pool:
        th.join(30)
    assert answered
    assert sorted(_entries(engine)) == sorted(answered)  # every answered append is there
    # a later append starts a fresh appender
    assert append_durable_many(engine, [_spec(1)])


def test_timeout_answers_the_caller_and_the_append_may_still_be_written(
    engine: Engine, appender: GroupCommitAppender
) -> None:
    with pytest.raises(TimeoutError, match="APPEND_TIMEOUT"):
        appender.append([_spec(1)], timeout=0.05)
    appender.stop()
    assert len(_entries(engine)) == 1


def test_the_appender_commits_durably(engine: Engine, appender: GroupCommitAppender) -> None:
    """The writer's transactions run with the platform's durable settings."""
    appender.start()
    appender.append([_spec(1)], timeout=30)
    with engine.connect() as conn:
        if is_sqlite(engine):
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


_CHILD = """
import os, sys
from privet.db import create_db_engine
from privet.ledger import EventSpec, append_durable
engine = create_db_engine(sys.argv[1])
for i in range(int(sys.argv[2])):
    entry_id = append_durable(engine, EventSpec("test.append", "prn_child", details={"i": i}))
    os.write(1, f"{entry_id}\\n".encode())
os.kill(os.getpid(), 9)  # no shutdown, no drain, no atexit: only what was committed stays
"""


def test_an_append_is_committed_when_append_durable_returns(
    engine: Engine, db_url: str, home: Path
) -> None:
    """A process appends, reports each id as append_durable returns, and is killed with
    SIGKILL after the last: every reported id is in the database for a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, db_url, "25"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    reported = [int(line) for line in proc.stdout.split()]
    assert len(reported) == 25
    check = (
        "import sys\n"
        "from sqlalchemy import text\n"
        "from privet.db import create_db_engine\n"
        "with create_db_engine(sys.argv[1]).connect() as c:\n"
        "    print(' '.join(str(r[0]) for r in c.execute(text('SELECT id FROM ledger_entries'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", check, db_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert sorted(int(i) for i in out.split()) == sorted(reported)


@pytest.mark.postgres
def test_a_connection_lost_between_batches_is_replaced(engine: Engine) -> None:
    """The writer keeps its connection between batches; a server that cut it (a restart,
    an idle timeout) costs a reconnect, not a failed batch, and nothing is written twice."""
    app = GroupCommitAppender(engine, LedgerSettings())
    try:
        first = app.append([_spec(1)], timeout=30)
        conn = app._conn
        assert conn is not None
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        conn.commit()
        with engine.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            admin.commit()
        second = app.append([_spec(2)], timeout=30)
    finally:
        app.stop()
    assert sorted(_entries(engine)) == first + second
    assert app.failed_batches == 0 and app.batches == 2


# --- awaited on an event loop (the gateway) -------------------------------------------------


def test_async_appends_give_each_awaiting_caller_its_own_ids(engine: Engine) -> None:
    async def many() -> list[list[int]]:
        calls = [append_durable_many_async(engine, [_spec(i), _spec(100 + i)]) for i in range(20)]
        return await asyncio.gather(*calls)

    try:
        got = in_own_thread(asyncio.run, many())
    finally:
        stop_appender(engine)
    entries = _entries(engine)
    assert sorted(i for ids in got for i in ids) == sorted(entries)
    for n, ids in enumerate(got):
        assert [entries[i]["details"]["n"] for i in ids] == [n, 100 + n]


def test_an_async_append_waits_for_its_commit_without_blocking_the_loop(engine: Engine) -> None:
    """While another connection holds the database the append cannot commit: the awaiting
    task is not done, and the loop goes on running other code meanwhile (a blocking wait
    would have finished the task, or hung the loop, before the check)."""

    async def scenario() -> tuple[bool, list[int], int]:
        with engine.connect() as holder:
            if is_sqlite(engine):
                holder.exec_driver_sql("SELECT 1")  # the engine begins with BEGIN IMMEDIATE
            else:
                holder.execute(text("LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE"))
            task = asyncio.create_task(append_durable_many_async(engine, [_spec(7)]))
            for _ in range(3):
                await asyncio.sleep(0.01)  # the task submits and waits; the loop runs on
            waiting = not task.done()
            holder.rollback()
        ids = await task
        return waiting, ids, len(_entries(engine))

    try:
        waiting, ids, count = in_own_thread(asyncio.run, scenario())
    finally:
        stop_appender(engine)
    assert waiting
    assert count == 1 and _entries(engine)[ids[0]]["details"]["n"] == 7


def test_an_async_append_of_a_failed_batch_raises_in_its_caller(
    engine: Engine, poison: None
) -> None:
    async def poisoned() -> None:
        await append_durable_many_async(engine, [EventSpec("test.poison", "prn_t")])

    try:
        with pytest.raises(LedgerAppendError, match="rolled back"):
            in_own_thread(asyncio.run, poisoned())
        assert in_own_thread(asyncio.run, append_durable_many_async(engine, [_spec(1)]))
    finally:
        stop_appender(engine)
    assert len(_entries(engine)) == 1
