"""Authorization decisions reach the ledger exactly once and durably before the response,
through the request's transaction when it changes something and through the group commit
otherwise (read-only requests, and requests whose transaction rolled back)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from privet.api.decisions import DecisionLog
from privet.db import session_scope
from privet.ledger import EventSpec, emit
from privet.ledger.appender import GroupCommitAppender, get_appender, stop_appender


def _events(engine: Engine, type_: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, event FROM ledger_entries ORDER BY id")).all()
    events = [(int(r[0]), json.loads(bytes(r[1]))) for r in rows]
    return [(i, e) for i, e in events if type_ is None or e["type"] == type_]


def _decisions(engine: Engine, action: str) -> list[tuple[int, dict[str, Any]]]:
    return [(i, e) for i, e in _events(engine, "auth.decision") if e["details"]["action"] == action]


# --- through the API -----------------------------------------------------------------------


def test_a_read_only_request_is_decided_through_the_group_commit(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    appender = get_appender(runtime.engine)
    before = appender.appended
    assert client.get("/v1/projects", headers=admin.headers).status_code == 200
    # durable (committed) by the time the response is back, written once, by the appender
    [(_, event)] = _decisions(runtime.engine, "project.list")
    assert event["outcome"] == "allow" and event["actor"] == admin.principal_id
    assert appender.appended == before + 1


def test_a_denied_read_is_one_deny_event(client, admin, make_caller, runtime) -> None:  # type: ignore[no-untyped-def]
    project = client.post("/v1/projects", json={"name": "p1"}, headers=admin.headers).json()
    predictor = make_caller("predictor", project["id"])
    appender = get_appender(runtime.engine)
    before = appender.appended
    denied = client.get(f"/v1/projects/{project['id']}/members", headers=predictor.headers)
    assert denied.status_code == 403
    [(_, event)] = _decisions(runtime.engine, "member.list")
    assert event["outcome"] == "deny" and event["actor"] == predictor.principal_id
    assert appender.appended == before + 1


def test_a_state_change_commits_its_decision_with_it(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    appender = get_appender(runtime.engine)
    before = appender.appended
    created = client.post("/v1/projects", json={"name": "p2"}, headers=admin.headers)
    assert created.status_code == 201
    [(decision_id, decision)] = _decisions(runtime.engine, "project.create")
    [(created_id, _)] = _events(runtime.engine, "project.created")
    assert decision["outcome"] == "allow"
    assert decision_id < created_id  # emitted at the check, in the request's transaction
    assert appender.appended == before  # not through the group commit


def test_a_denied_state_change_is_written_once_after_its_rollback(
    client,  # type: ignore[no-untyped-def]
    admin,
    make_caller,
    runtime,
) -> None:
    project = client.post("/v1/projects", json={"name": "p3"}, headers=admin.headers).json()
    predictor = make_caller("predictor", project["id"])
    appender = get_appender(runtime.engine)
    before = appender.appended
    entries = len(_events(runtime.engine))
    denied = client.post(
        f"/v1/projects/{project['id']}/members",
        json={"service_account_name": "x", "role": "admin"},
        headers=predictor.headers,
    )
    assert denied.status_code == 403
    [(_, event)] = _decisions(runtime.engine, "member.add")
    assert event["outcome"] == "deny"
    assert appender.appended == before + 1
    assert len(_events(runtime.engine)) == entries + 1  # the decision and nothing else


# --- DecisionLog on a session --------------------------------------------------------------


@pytest.fixture
def counted(engine: Engine) -> Iterator[GroupCommitAppender]:
    appender = get_appender(engine)
    yield appender
    stop_appender(engine)


def _decision(n: int = 0) -> EventSpec:
    return EventSpec("auth.decision", "prn_t", outcome="allow", details={"action": f"a.{n}"})


def _request(engine: Engine, log: DecisionLog) -> Any:
    """What get_session does around a request's transaction."""
    from contextlib import contextmanager

    @contextmanager
    def scope() -> Iterator[Any]:
        try:
            with session_scope(engine) as session:
                log.attach(session)
                yield session
        except BaseException:
            log.write_outstanding()
            raise
        log.write_outstanding()

    return scope()


def test_deferred_decisions_ride_with_a_transaction_that_writes(
    engine: Engine, counted: GroupCommitAppender
) -> None:
    log = DecisionLog(engine, defer=True)
    with _request(engine, log) as session:
        log.record(session, _decision())
        session.execute(text("SELECT 1"))
        emit(session, type="test.changed", actor="prn_t")
    ids = [i for i, _ in _events(engine)]
    types = [e["type"] for _, e in _events(engine)]
    assert types == ["test.changed", "auth.decision"] and len(ids) == 2
    assert counted.appended == 0  # committed in the request's transaction


@pytest.mark.parametrize("sql", [True, False], ids=["reads", "no-sql"])
def test_deferred_decisions_of_a_read_only_transaction_are_appended(
    engine: Engine, counted: GroupCommitAppender, sql: bool
) -> None:
    log = DecisionLog(engine, defer=True)
    with _request(engine, log) as session:
        log.record(session, _decision(1))
        if sql:
            session.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one()
        log.record(session, _decision(2))
        session.commit()  # what the export routes do: the decisions are durable now
        assert [e["details"]["action"] for _, e in _events(engine)] == ["a.1", "a.2"]
    assert len(_events(engine)) == 2 and counted.appended == 2


def test_decisions_of_a_rolled_back_transaction_are_written_once(
    engine: Engine, counted: GroupCommitAppender
) -> None:
    for defer in (False, True):
        log = DecisionLog(engine, defer=defer)
        with pytest.raises(RuntimeError), _request(engine, log) as session:
            log.record(session, _decision(int(defer)))
            emit(session, type="test.changed", actor="prn_t")
            raise RuntimeError("the service failed")
    assert [e["details"]["action"] for _, e in _events(engine)] == ["a.0", "a.1"]
    assert counted.appended == 2


def test_a_decision_committed_early_is_not_written_again_after_a_later_failure(
    engine: Engine, counted: GroupCommitAppender
) -> None:
    log = DecisionLog(engine, defer=False)
    with pytest.raises(RuntimeError), _request(engine, log) as session:
        log.record(session, _decision())
        session.commit()  # committed with the (empty) change
        session.execute(text("SELECT 1"))
        raise RuntimeError("after the commit")
    assert len(_events(engine, "auth.decision")) == 1 and counted.appended == 0


def test_a_rolled_back_savepoint_does_not_lose_or_repeat_a_decision(
    engine: Engine, counted: GroupCommitAppender
) -> None:
    log = DecisionLog(engine, defer=False)
    with _request(engine, log) as session:
        log.record(session, _decision())
        with pytest.raises(RuntimeError), session.begin_nested():
            emit(session, type="test.discarded", actor="prn_t")
            raise RuntimeError("inside the savepoint")
        emit(session, type="test.kept", actor="prn_t")
    assert [e["type"] for _, e in _events(engine)] == ["auth.decision", "test.kept"]
    assert counted.appended == 0
