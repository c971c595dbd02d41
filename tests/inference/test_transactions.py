"""Serving keeps no database transaction open during a forward pass, writes a request's
predictions and events atomically, and refuses (writing nothing) when the version stops
serving between its authorization and its write; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tests.inference.conftest import PURPOSE
from tests.open_transactions import OpenTransactions

TEXTS = ["the customer paid on time", "late payment and high debt"]


def _body(texts: list[str]) -> dict[str, Any]:
    return {"items": [{"text": t} for t in texts], "purpose": PURPOSE}


@pytest.fixture
def served(app: Any, runtime: Any, project: str, make_version: Callable[..., Any]) -> Any:
    """The approved version 1 of ``risk``, loaded into the app's inference service."""
    from privet.api.routes.inference import get_inference
    from privet.db import read_session
    from privet.inference.versions import lookup_version

    version = make_version(project)

    class _Request:  # get_inference reads only request.app
        pass

    request = _Request()
    request.app = app  # type: ignore[attr-defined]
    service = get_inference(request, runtime)  # type: ignore[arg-type]
    with read_session(runtime.engine) as session:
        info = lookup_version(session, project_id=project, model="risk", version="1")
    return version, service.served(info).classifier


@pytest.fixture
def on_forward(served: Any) -> Iterator[Callable[[Callable[[], None]], None]]:
    """Run a callback at the start of every forward pass of the served model (a forward
    pre-hook on the real model: nothing is replaced)."""
    hooks: list[Any] = []

    def add(callback: Callable[[], None]) -> None:
        hooks.append(served[1].model.register_forward_pre_hook(lambda *_: callback()))

    yield add
    for hook in hooks:
        hook.remove()


def test_no_transaction_is_open_during_the_forward_pass(
    client: Any, runtime: Any, project: str, served: Any, on_forward: Any, make_caller: Any, paths
) -> None:
    caller = make_caller("predictor", project)
    seen: list[list[str]] = []
    with OpenTransactions(runtime.engine) as txns:
        on_forward(lambda: seen.append(txns.now()))
        for texts in (TEXTS, TEXTS[:1]):
            r = client.post(
                paths.predict(project, "risk", 1), json=_body(texts), headers=caller.headers
            )
            assert r.status_code == 200, r.text
        assert txns.now() == []
    assert len(seen) >= 2, "the forward-pass hook never ran"
    assert all(open_ == [] for open_ in seen), seen


def test_explain_runs_with_no_transaction_open(
    client: Any,
    runtime: Any,
    project: str,
    served: Any,
    on_forward: Any,
    make_caller: Any,
    paths,
    events,
) -> None:
    app = make_caller("predictor", project)
    pid = client.post(
        paths.predict(project, "risk", 1), json=_body(TEXTS[:1]), headers=app.headers
    ).json()["predictions"][0]["prediction_id"]
    seen: list[list[str]] = []
    with OpenTransactions(runtime.engine) as txns:
        on_forward(lambda: seen.append(txns.now()))
        r = client.post(paths.explain(project, pid), json={"text": TEXTS[0]}, headers=app.headers)
    assert r.status_code == 200, r.text
    assert seen and all(open_ == [] for open_ in seen), seen
    explained = events("prediction.explained")
    assert len(explained) == 1 and explained[0]["objects"]["prediction"] == pid
    decisions = [
        e for e in events("auth.decision") if e["details"]["action"] == "prediction.explain"
    ]
    assert [d["outcome"] for d in decisions] == ["allow"]


def _fail_prediction_events(engine: Any) -> None:
    """Make the database refuse every ``prediction.made`` ledger entry (as a full disk
    or a constraint would), after the request's prediction rows were inserted."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER fail_made BEFORE INSERT ON ledger_entries "
                    "WHEN instr(CAST(NEW.event AS TEXT), '\"prediction.made\"') > 0 "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION fail_made() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN IF position('\"prediction.made\"' in convert_from(NEW.event, "
                    "'UTF8')) > 0 THEN RAISE EXCEPTION 'injected failure'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER fail_made BEFORE INSERT ON ledger_entries "
                    "FOR EACH ROW EXECUTE FUNCTION fail_made()"
                )
            )


def _drop_failure(engine: Any) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER fail_made"))
        else:
            conn.execute(text("DROP TRIGGER fail_made ON ledger_entries"))
            conn.execute(text("DROP FUNCTION fail_made()"))


def _count(runtime: Any, table: Any) -> int:
    from privet.db import read_session

    with read_session(runtime.engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_failed_write_leaves_neither_rows_nor_events(
    client: Any, runtime: Any, project: str, served: Any, make_caller: Any, paths, events
) -> None:
    from privet.inference.tables import Prediction
    from privet.monitoring.tables import PredictionDecision

    caller = make_caller("predictor", project)
    url = paths.predict(project, "risk", 1)
    _fail_prediction_events(runtime.engine)
    try:
        r = client.post(url, json=_body(TEXTS), headers=caller.headers)
        assert r.status_code == 500, r.text
    finally:
        _drop_failure(runtime.engine)
    assert _count(runtime, Prediction) == 0
    assert _count(runtime, PredictionDecision) == 0
    assert events("prediction.made") == []
    # The decision was made: it is in the ledger once, although nothing else is.
    decisions = [
        e for e in events("auth.decision") if e["details"]["action"] == "model_version.predict"
    ]
    assert [d["outcome"] for d in decisions] == ["allow"]
    # And the next request is whole: rows and events together.
    r = client.post(url, json=_body(TEXTS), headers=caller.headers)
    assert r.status_code == 200, r.text
    assert _count(runtime, Prediction) == 2 and len(events("prediction.made")) == 2


@pytest.mark.parametrize("state", ["suspended", "retired"])
def test_a_version_stopped_while_classifying_is_refused_and_nothing_is_written(
    client: Any,
    runtime: Any,
    project: str,
    served: Any,
    on_forward: Any,
    make_caller: Any,
    change_state: Any,
    paths,
    events,
    app: Any,
    state: str,
) -> None:
    from privet.inference.tables import Prediction

    version = served[0]
    caller = make_caller("predictor", project)
    changed: list[bool] = []

    def stop() -> None:  # another replica (or monitoring) stops it mid-request
        if not changed:
            changed.append(True)
            change_state(version.id, state)

    on_forward(stop)
    r = client.post(paths.predict(project, "risk", 1), json=_body(TEXTS), headers=caller.headers)
    assert changed, "the forward-pass hook never ran"
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"].endswith("/model-version-not-serving")
    assert (
        problem["state"] == state and "while the request was being classified" in problem["detail"]
    )
    assert _count(runtime, Prediction) == 0
    assert events("prediction.made") == []
    refused = events("prediction.refused")
    assert len(refused) == 1
    assert refused[0]["details"] == {
        "reason": "version-not-serving",
        "state": state,
        "purpose": PURPOSE,
        "items": 2,
        "after_decision": True,
    }
    decisions = [
        e for e in events("auth.decision") if e["details"]["action"] == "model_version.predict"
    ]
    assert [d["outcome"] for d in decisions] == ["allow"]
    assert version.id not in app.state.inference.cache  # its memory freed
    # The next request is refused at authorization, as for any version not serving.
    r = client.post(paths.predict(project, "risk", 1), json=_body(TEXTS), headers=caller.headers)
    assert r.status_code == 409 and r.json()["state"] == state
