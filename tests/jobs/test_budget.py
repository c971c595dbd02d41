"""The privacy-budget ledger under concurrency, and its never-refund rule."""

from __future__ import annotations

import pytest

from tests.jobs.conftest import race


def _facts(version_id: str = "dsv_budget", total: float = 8.0):  # type: ignore[no-untyped-def]
    from privet.jobs.sources import DatasetFacts

    return DatasetFacts(
        version_id=version_id,
        dataset_id="ds",
        project_id="prj",
        digest="sha256:" + "0" * 64,
        row_count=100,
        contains_personal_data=True,
        categories=(),
        purposes=("p",),
        epsilon_total=total,
        delta=1e-5,
    )


def test_concurrent_reservations_never_overspend(runtime) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.jobs import budget

    facts = _facts(total=8.0)

    def reserve(i: int) -> None:
        with session_scope(runtime.engine) as session:
            budget.check_and_reserve(
                session, facts=facts, job_id=f"job_{i}", epsilon=3.0, actor="u"
            )

    outcomes = race(8, reserve, refused=budget.BudgetExceededError)
    assert outcomes == ["ok", "ok"] + ["refused"] * 6
    with session_scope(runtime.engine) as session:
        status = budget.budget_status(session, dataset_version_id=facts.version_id)
    assert status is not None
    assert status.epsilon_reserved == 6.0 and status.epsilon_remaining == 2.0
    assert len(status.entries) == 2


def test_charged_epsilon_is_never_released(runtime) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.jobs import budget
    from privet.jobs.tables import TrainingJob
    from privet.kit.errors import ConflictError
    from privet.kit.ids import utcnow

    facts = _facts("dsv_charge")
    job = TrainingJob(
        id="job_c",
        project_id="prj",
        dataset_version_id=facts.version_id,
        model_name="m",
        base_model="b",
        purpose="p",
        private=True,
        target_epsilon=3.0,
        params={},
        submitted_by="User:u",
        submitted_by_id="u",
        created_at=utcnow(),
        progress={},
    )
    with session_scope(runtime.engine) as session:
        session.add(job)
        budget.check_and_reserve(session, facts=facts, job_id=job.id, epsilon=3.0, actor="u")
    with session_scope(runtime.engine) as session:
        assert budget.charge(session, job=job, actor=None) == 3.0
    with session_scope(runtime.engine) as session, pytest.raises(ConflictError):
        budget.release(session, job=job, actor="u")
    with session_scope(runtime.engine) as session:
        status = budget.budget_status(session, dataset_version_id=facts.version_id)
    assert status is not None
    assert (status.epsilon_reserved, status.epsilon_charged) == (0.0, 3.0)
    assert [e["kind"] for e in status.entries] == ["reserve", "charge"]
