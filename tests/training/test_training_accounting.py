"""Accounting: ε is a pure function of (sigma, q, steps, δ) and matches independent accountants."""

from __future__ import annotations

import math

import dp_accounting
import pytest

from privet.training import accounting
from privet.training.accounting import AccountingError, compute_epsilon


def pld_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    """Google's PLD accountant: an implementation independent of Opacus."""
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    acc = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
    acc.compose(event)
    return float(acc.get_epsilon(delta))


@pytest.mark.parametrize(
    ("sigma", "q", "steps", "delta"),
    [(1.0, 0.064, 47, 1.25e-5), (0.8, 0.01, 300, 1e-5), (2.0, 0.1, 30, 1e-6)],
)
def test_prv_matches_google_pld(sigma: float, q: float, steps: int, delta: float) -> None:
    ours = compute_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    theirs = pld_epsilon(sigma, q, steps, delta)
    assert ours == pytest.approx(theirs, rel=0.01)


def test_rdp_is_an_upper_bound_of_prv() -> None:
    kw = {"noise_multiplier": 0.9, "sample_rate": 0.064, "steps": 94, "delta": 1e-5}
    assert compute_epsilon(**kw, accountant="rdp") >= compute_epsilon(**kw, accountant="prv")


@pytest.mark.parametrize("acc", ["prv", "rdp"])
def test_plan_spends_at_most_the_target_and_recomputes_exactly(acc: str) -> None:
    q, steps = accounting.steps_for(n=8000, logical_batch_size=512, epochs=3)
    assert q == pytest.approx(512 / 8000)
    assert steps == 3 * 16
    p = accounting.plan(target_epsilon=3.0, delta=1e-5, sample_rate=q, steps=steps, accountant=acc)
    assert 3.0 * 0.97 <= p.epsilon <= 3.0
    again = compute_epsilon(
        noise_multiplier=p.noise_multiplier,
        sample_rate=p.sample_rate,
        steps=p.steps,
        delta=p.delta,
        accountant=acc,
    )
    assert again == p.epsilon  # exactly: the recorded four numbers reproduce it


def test_reservation_and_edge_cases() -> None:
    assert accounting.reservation_amount(8.0) == 8.0
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(AccountingError):
            accounting.reservation_amount(bad)
    assert compute_epsilon(noise_multiplier=1.0, sample_rate=0.1, steps=0, delta=1e-5) == 0.0
    assert compute_epsilon(noise_multiplier=0.0, sample_rate=0.1, steps=5, delta=1e-5) == math.inf
    with pytest.raises(AccountingError):
        compute_epsilon(noise_multiplier=1.0, sample_rate=0.1, steps=5, delta=1e-5, accountant="x")
    assert accounting.default_delta(1000) < 1 / 1000
