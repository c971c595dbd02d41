"""The cached accountants give exactly stock Opacus's ε, and are reached by name."""

from __future__ import annotations

import numpy as np
import pytest
from opacus.accountants import PRVAccountant, RDPAccountant, create_accountant
from opacus.accountants.utils import get_noise_multiplier

from privet.training import accounting
from privet.training.accountants import (
    MECHANISMS,
    CachedPRVAccountant,
    CachedRDPAccountant,
    rdp_curve,
)

HISTORIES = [
    [(1.1, 0.01, 100)],
    [(0.8, 0.125, 80)],
    [(1.636, 0.125, 80), (9.06, 1.0, 10)],  # training composed with selection releases
    [(3.0, 0.5, 3), (2.0, 0.25, 7)],
]


@pytest.mark.parametrize("history", HISTORIES)
@pytest.mark.parametrize(
    ("stock", "cached"),
    [(PRVAccountant, CachedPRVAccountant), (RDPAccountant, CachedRDPAccountant)],
)
def test_same_epsilon_as_stock_opacus(
    history: list[tuple[float, float, int]], stock: type, cached: type
) -> None:
    a, b = stock(), cached()
    a.history, b.history = list(history), list(history)
    with np.errstate(divide="ignore"):
        assert b.get_epsilon(delta=1e-5) == a.get_epsilon(delta=1e-5)


def test_the_registered_names_make_the_cached_classes() -> None:
    assert type(create_accountant(MECHANISMS["prv"])) is CachedPRVAccountant
    assert type(create_accountant(MECHANISMS["rdp"])) is CachedRDPAccountant
    assert set(MECHANISMS) == set(accounting.ACCOUNTANTS)


def test_noise_search_and_recomputation_match_stock() -> None:
    kw = {"target_epsilon": 3.0, "target_delta": 5e-5, "sample_rate": 0.125, "steps": 80}
    assert get_noise_multiplier(accountant=MECHANISMS["prv"], **kw) == get_noise_multiplier(
        accountant="prv", **kw
    )
    stock = PRVAccountant()
    stock.history = [(1.2, 0.125, 80)]
    assert accounting.compute_epsilon(
        noise_multiplier=1.2, sample_rate=0.125, steps=80, delta=5e-5
    ) == stock.get_epsilon(delta=5e-5)


def test_a_curve_is_computed_once_and_cannot_be_changed() -> None:
    rdp_curve.cache_clear()
    acc = CachedPRVAccountant()
    for steps in range(1, 6):  # a run asking for ε after each step
        acc.history = [(1.3, 0.02, steps)]
        acc.get_epsilon(delta=1e-5)
    assert rdp_curve.cache_info().misses == 1
    with pytest.raises(ValueError):
        rdp_curve(0.02, 1.3, tuple(RDPAccountant.DEFAULT_ALPHAS))[0] = 0.0
