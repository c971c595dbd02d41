"""Opacus's PRV and RDP accountants, with each (q, sigma) RDP curve computed once.

Why: Opacus recomputes the RDP of its ~150 orders on every `get_epsilon` (the fractional
orders by a slow series), and PRV's safe discretisation domain asks for it twice per call.
A run asks for ε at every step and the noise search asks ~20 times: on a tiny BERT that was
98% of a training run's time (250 of 255 s in `tests/training`), and it is most of the
accounting in a real job. The curve depends only on (q, sigma, order), so the curve is
cached and multiplied by the steps: the same functions in the same order, so the same
numbers as stock Opacus 1.6 (tests/training/test_accountants.py checks equality).

Registered with Opacus's own registry (`register_accountant`) under `MECHANISMS`, so
`get_noise_multiplier` and the optimizer hook use them like any Opacus accountant.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from opacus.accountants import PRVAccountant, RDPAccountant, register_accountant
from opacus.accountants.analysis import rdp as rdp_analysis
from opacus.accountants.analysis.prv import Domain

DEFAULT_ORDERS: tuple[float, ...] = tuple(RDPAccountant.DEFAULT_ALPHAS)


@lru_cache(maxsize=4096)
def rdp_curve(sample_rate: float, noise_multiplier: float, orders: tuple[float, ...]) -> Any:
    """RDP of one Poisson-sampled Gaussian step at each order (read-only array)."""
    curve = rdp_analysis.compute_rdp(
        q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=list(orders)
    )
    curve.setflags(write=False)
    return curve


def _rdp_epsilon(history: Sequence[tuple[float, float, int]], delta: float) -> float:
    """Opacus's `RDPAccountant.get_epsilon` over `history`, from cached curves."""
    rdp = sum([rdp_curve(q, sigma, DEFAULT_ORDERS) * steps for sigma, q, steps in history])
    eps, _ = rdp_analysis.get_privacy_spent(orders=list(DEFAULT_ORDERS), rdp=rdp, delta=delta)
    return float(eps)


class CachedRDPAccountant(RDPAccountant):
    """`RDPAccountant` whose curves come from `rdp_curve`."""

    def get_privacy_spent(
        self, *, delta: float, alphas: list[float | int] | None = None
    ) -> tuple[float, float]:
        if not self.history:
            return 0, 0
        orders = DEFAULT_ORDERS if alphas is None else tuple(float(a) for a in alphas)
        rdp = sum([rdp_curve(q, sigma, orders) * steps for sigma, q, steps in self.history])
        eps, best = rdp_analysis.get_privacy_spent(orders=list(orders), rdp=rdp, delta=delta)
        return float(eps), float(best)


class CachedPRVAccountant(PRVAccountant):
    """`PRVAccountant` whose safe domain (Gopi et al. 2021, remark 5.6; Opacus's
    `compute_safe_domain_size`) is bounded with cached RDP curves."""

    def _get_domain(
        self,
        prvs: list[Any],
        num_self_compositions: list[int],
        eps_error: float,
        delta_error: float,
    ) -> Domain:
        total = sum(num_self_compositions)
        mechanisms = [(p.noise_multiplier, p.sample_rate) for p in prvs]
        bound = _rdp_epsilon(
            [(s, q, n) for (s, q), n in zip(mechanisms, num_self_compositions, strict=True)],
            delta_error / 4,
        )
        for sigma, q in mechanisms:
            bound = max(bound, _rdp_epsilon([(sigma, q, 1)], delta_error / (8 * total)))
        size = max(bound, eps_error) + 3
        mesh = eps_error / np.sqrt(total * np.log(12 / delta_error) / 2)
        return Domain.create_aligned(-size, size, mesh)


MECHANISMS = {"prv": "privet-prv", "rdp": "privet-rdp"}
register_accountant(MECHANISMS["prv"], CachedPRVAccountant, force=True)
register_accountant(MECHANISMS["rdp"], CachedRDPAccountant, force=True)
