"""The insider suite's stateful property test, README profile: bounded (8 sequences of up to
25 steps, reproducible); the long profile is tests/benchmarks/test_insider_long.py.

Random sequences of grants, invitations (once the route exists), key mints, uploads,
erasures, data-subject requests, submissions, trainings (tiny model, at most one per
sequence), approvals, report reads and reads of other projects' objects, sent by the
platform admin, two project admins, a steward, an approver, an auditor, a predictor and the
principals they create, each with its real keys. After every step the four insider
invariants are checked against the database (tests/security/insider.py); a failure prints
the sequence of requests that broke one.

This is a real test, not an expected failure: on the code at the start of issue 18 it fails
(key minting widens capabilities, four eyes are bypassed through a service account, erasure
resets budgets, the DSR log reaches project roles); it passes once those fixes are in.
PRIVET_INSIDER_EXAMPLES / PRIVET_INSIDER_STEPS change the counts, PRIVET_INSIDER_SHRINK=1
shrinks a failure to its shortest sequence (minutes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.security.insider import Env, run


def _int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


@pytest.mark.insider
def test_insiders_cannot_break_the_invariants(sqlite_template: Path, tiny_model: Path) -> None:
    stats = run(
        Env(sqlite_template=sqlite_template, tiny_catalog=tiny_model, max_trainings=1),
        profile="insider-readme",
        examples=_int("PRIVET_INSIDER_EXAMPLES"),
        steps=_int("PRIVET_INSIDER_STEPS"),
        shrink=os.environ.get("PRIVET_INSIDER_SHRINK") == "1" or None,
    )
    assert stats.examples >= 1 and stats.steps >= stats.examples, stats.summary()
