"""A drift reference is built with no database transaction open during its forward passes
(after an approval and on request), and stored only if the version still serves: a version
retired while its reference was being built gets no reference, and nothing is written.
A real tiny model trained by the worker; SQLite and PostgreSQL.

The forward passes are watched with a global module forward pre-hook of torch: it sees
every module's forward in the process, whichever model object the build loaded."""

# ruff: noqa: F811 - the jobs fixtures are imported here and requested by name

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.inference.conftest import set_state
from tests.jobs.conftest import (  # noqa: F401 - fixtures
    approver,
    engineer,
    job_settings,
    make_worker,
    project,
    submit,
    tiny_model,
)
from tests.monitoring.test_reference_on_approval import approve, train
from tests.open_transactions import OpenTransactions

REBUILD = "/v1/projects/{project}/models/loans-classifier/versions/1:monitoring-reference"


@contextmanager
def on_every_forward(callback: Callable[[], None]) -> Iterator[list[int]]:
    """Run ``callback`` before every module forward in this process (nothing replaced);
    yields a list that counts the calls."""
    import torch

    calls: list[int] = []

    def hook(*_: Any) -> None:
        calls.append(1)
        callback()

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def _reference(runtime: Any, version_id: str) -> dict[str, Any] | None:
    """The version's reference row as it is in the database now (None: no row)."""
    from privet.db import read_session
    from privet.monitoring.tables import MonitoringReference

    with read_session(runtime.engine) as session:
        row = session.get(MonitoringReference, version_id)
        return None if row is None else row.model_dump()


def test_no_transaction_is_open_while_a_reference_classifies(
    client, runtime, admin, project, engineer, approver, make_worker, events
) -> None:  # type: ignore[no-untyped-def]
    _dataset, vid = train(client, admin, engineer, project, make_worker)
    seen: list[list[str]] = []
    with OpenTransactions(runtime.engine) as txns:
        with on_every_forward(lambda: seen.append(txns.now())) as calls:
            approve(client, approver, project, vid)  # the build runs after the commit
            assert calls, "the build ran no forward pass"
            after_approval = len(seen)
            rebuilt = client.post(REBUILD.format(project=project), headers=approver.headers)
        assert txns.now() == []
    assert rebuilt.status_code == 200, rebuilt.text
    assert len(seen) > after_approval, "the rebuild ran no forward pass"
    assert all(open_ == [] for open_ in seen), [o for o in seen if o][:3]
    assert rebuilt.json()["status"] == "ready"
    assert [e["details"]["trigger"] for e in events("monitoring.reference_set")] == [
        "approval",
        "rebuild",
    ]

    # Retired while the rebuild classifies: 409, the approval's reference stays as it was.
    before = _reference(runtime, vid)
    retired: list[bool] = []

    def retire() -> None:
        if not retired:
            retired.append(True)
            set_state(runtime, vid, "retired")

    with on_every_forward(retire):
        refused = client.post(REBUILD.format(project=project), headers=approver.headers)
    assert retired and refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/model-version-not-serving")
    assert problem["state"] == "retired"
    assert "while its reference was being built: nothing was recorded" in problem["detail"]
    assert before is not None and before["status"] == "ready"
    assert _reference(runtime, vid) == before  # not a column changed
    assert len(events("monitoring.reference_set")) == 2
    assert events("monitoring.reference_failed") == []
    (retired_event,) = events("model_version.retired")
    assert retired_event["objects"]["model_version"] == vid


def test_a_version_retired_during_the_approval_build_gets_no_reference(
    client, runtime, admin, project, engineer, approver, make_worker, events
) -> None:  # type: ignore[no-untyped-def]
    from privet.monitoring.tables import REFERENCE_PENDING

    _dataset, vid = train(client, admin, engineer, project, make_worker)
    retired: list[bool] = []

    def retire() -> None:  # another request retires it while the reference classifies
        if not retired:
            retired.append(True)
            set_state(runtime, vid, "retired")

    with on_every_forward(retire):
        approved = approve(client, approver, project, vid)
    assert retired, "the build ran no forward pass"
    assert approved["monitoring_reference"]["status"] == "pending"
    row = _reference(runtime, vid)
    assert row is not None and row["status"] == REFERENCE_PENDING and row["count"] == 0
    assert row["data"] == {} and row["meta"] is None  # as the approval left it
    assert events("monitoring.reference_set") == []
    assert events("monitoring.reference_failed") == []
    state = client.get(
        f"/v1/projects/{project}/model-versions/{vid}", headers=approver.headers
    ).json()["state"]
    assert state == "retired"
