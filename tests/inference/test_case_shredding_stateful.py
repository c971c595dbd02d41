"""Case texts under random sequences of sealing, reviews, erasures, time passing and
retention sweeps (Hypothesis state machine, real SQLite and key provider): a case's text
is readable exactly while no review closed it, its subject was not erased and its
retention has not ended; once shredded its data key is destroyed, it never comes back,
and each shredding is exactly one ledger event with its reason."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.inference.conftest import ledger_events

CANARY = "stateful-case-canary"
SUBJECTS = 3


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_case_texts_live_until_shredded_and_never_after(runtime: Any) -> None:
    from privet.crypto import get_data_key
    from privet.db import session_scope
    from privet.inference import cases
    from privet.inference.tables import Prediction, PredictionCase
    from privet.kit.ids import utcnow

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.now: datetime = utcnow()
            #: prediction id -> [subject, sealed at, shred reason or None]
            self.model: dict[str, list[Any]] = {}
            self.run = uuid.uuid4().hex[:8]  # the database outlives each example

        def teardown(self) -> None:
            """Close every case left live, so the next example's sweep sees only its own."""
            with session_scope(runtime.engine) as session:
                for pid, (_s, _at, why) in self.model.items():
                    row = session.get(PredictionCase, pid)
                    if why is None and row is not None:
                        cases.shred_case(session, row=row, reason=cases.REVIEWED, actor="t")

        def _project(self) -> str:
            return f"prj_{self.run}"

        @rule(subject=st.integers(0, SUBJECTS - 1))
        def seal(self, subject: int) -> None:
            pid = f"prd_{uuid.uuid4().hex[:16]}"
            at = utcnow()
            with session_scope(runtime.engine) as session:
                session.add(
                    Prediction(
                        id=pid,
                        project_id=self._project(),
                        model_id="mdl_x",
                        model_version_id="mv_x",
                        version_number=1,
                        caller="svc_x",
                        purpose="credit_scoring",
                        input_digest="hmac-sha256:" + "0" * 64,
                        subject_digest=f"{self.run}-{subject}",
                        label="reject",
                        score_ppm=900_000,
                        created_at=at,
                    )
                )
                cases.seal_cases(
                    session,
                    provider=runtime.key_provider,
                    project_id=self._project(),
                    cases=[(pid, f"{CANARY} {pid}")],
                    created_at=at,
                )
            self.model[pid] = [subject, at, None]

        @precondition(lambda self: bool(self.model))
        @rule(data=st.data())
        def review(self, data: Any) -> None:
            pid = data.draw(st.sampled_from(sorted(self.model)))
            with session_scope(runtime.engine) as session:
                prediction = session.get(Prediction, pid)
                assert prediction is not None
                done = cases.shred_reviewed_case(session, prediction=prediction, actor="usr_r")
            assert done == (self.model[pid][2] is None)
            self.model[pid][2] = self.model[pid][2] or cases.REVIEWED

        @rule(subject=st.integers(0, SUBJECTS - 1))
        def erase(self, subject: int) -> None:
            with session_scope(runtime.engine) as session:
                n = cases.shred_subject_cases(
                    session, subject_digest=f"{self.run}-{subject}", actor="usr_s"
                )
            live = [p for p, (s, _at, why) in self.model.items() if s == subject and why is None]
            assert n == len(live)
            for pid in live:
                self.model[pid][2] = cases.ERASURE

        @rule(days=st.integers(0, 40))
        def time_passes(self, days: int) -> None:
            self.now += timedelta(days=days)

        @rule()
        def sweep(self) -> None:
            with session_scope(runtime.engine) as session:
                n = cases.sweep_case_retention(session, now=self.now)
            due = [
                p
                for p, (_s, at, why) in self.model.items()
                if why is None and at + cases.retention() <= self.now
            ]
            assert n == len(due)
            for pid in due:
                self.model[pid][2] = cases.RETENTION

        @invariant()
        def readable_exactly_while_live(self) -> None:
            with session_scope(runtime.engine) as session:
                for pid, (_s, at, why) in self.model.items():
                    prediction = session.get(Prediction, pid)
                    assert prediction is not None
                    key = get_data_key(session=session, ref=cases.case_ref(self._project(), pid))
                    row = session.get(PredictionCase, pid)
                    assert row is not None
                    assert (key.destroyed_at is not None) == (why is not None)
                    assert (row.text_sealed is None) == (why is not None)
                    assert row.shred_reason == why
                    if why is None and at + cases.retention() > self.now:
                        got = cases.read_case(
                            session,
                            provider=runtime.key_provider,
                            prediction=prediction,
                            now=self.now,
                        )
                        assert got.text == f"{CANARY} {pid}"
                    else:
                        with pytest.raises(cases.CaseTextGoneError):
                            cases.read_case(
                                session,
                                provider=runtime.key_provider,
                                prediction=prediction,
                                now=self.now,
                            )

        @invariant()
        def one_event_per_shredding(self) -> None:
            ours = {
                e["objects"]["prediction"]: e["details"]["reason"]
                for e in ledger_events(runtime, "prediction.case_shredded")
                if e["objects"]["prediction"] in self.model
            }
            count = sum(
                1
                for e in ledger_events(runtime, "prediction.case_shredded")
                if e["objects"]["prediction"] in self.model
            )
            assert count == len(ours)
            assert ours == {p: why for p, (_s, _at, why) in self.model.items() if why}

    Machine.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    Machine.TestCase().runTest()
