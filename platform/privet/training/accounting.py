"""Privacy accounting: (ε, δ) ↔ noise multiplier for Poisson-sampled DP-SGD.

Everything the budget ledger needs is a pure function of four recorded numbers —
noise multiplier sigma, sample rate q, number of steps, δ — plus the accountant's name.
`compute_epsilon` recomputes ε from them with a fresh accountant; the ε a training run
reports is exactly that value, so anyone holding the four numbers can check it.

PRV (Gopi et al. 2021) is the default: it is tight and agrees with Google's PLD
accountant to well under 1%. RDP is available; it is looser (reports a larger ε for the
same noise), so it spends budget faster for the same model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ACCOUNTANTS = ("prv", "rdp")
DEFAULT_ACCOUNTANT = "prv"


class AccountingError(ValueError):
    """Privacy parameters that cannot be accounted for."""


@dataclass(frozen=True)
class PrivacyPlan:
    """The DP-SGD parameters chosen for a target (ε, δ) before training starts."""

    target_epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    accountant: str
    epsilon: float
    """ε the plan spends, recomputed from the four numbers; never above the target."""


def _check(accountant: str, delta: float) -> None:
    if accountant not in ACCOUNTANTS:
        raise AccountingError(f"unknown accountant {accountant!r}; use one of {ACCOUNTANTS}")
    if not 0.0 < delta < 1.0:
        raise AccountingError(f"δ must be in (0, 1), got {delta}")


def compute_epsilon(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: str = DEFAULT_ACCOUNTANT,
) -> float:
    """ε spent by `steps` Poisson-sampled Gaussian steps; the independent recomputation."""
    _check(accountant, delta)
    if steps == 0:
        return 0.0
    if noise_multiplier <= 0.0:
        return math.inf
    if not 0.0 < sample_rate <= 1.0:
        raise AccountingError(f"sample rate must be in (0, 1], got {sample_rate}")
    from opacus.accountants import create_accountant  # loads torch: lazily

    acc = create_accountant(mechanism=accountant)
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(acc.get_epsilon(delta=delta))


def reservation_amount(target_epsilon: float) -> float:
    """ε to reserve against a dataset's budget at admission: the full target.

    Training never spends more than its target (the plan checks it), and it is charged in
    full at start even if training later fails or is cancelled, so the target is the
    honest amount to hold.
    """
    if not math.isfinite(target_epsilon) or target_epsilon <= 0.0:
        raise AccountingError(f"target ε must be positive and finite, got {target_epsilon}")
    return float(target_epsilon)


def default_delta(n: int) -> float:
    """A δ well below 1/n (the usual ceiling): 1 / (10·n)."""
    if n <= 0:
        raise AccountingError("need at least one example")
    return 1.0 / (10.0 * n)


def steps_for(*, n: int, logical_batch_size: int, epochs: int) -> tuple[float, int]:
    """Sample rate and total steps for `epochs` passes of Poisson batches of expected size."""
    if n <= 0 or logical_batch_size <= 0 or epochs <= 0:
        raise AccountingError("n, logical batch size and epochs must be positive")
    batch = min(logical_batch_size, n)
    sample_rate = batch / n
    steps_per_epoch = max(1, round(n / batch))
    return sample_rate, steps_per_epoch * epochs


def plan(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = DEFAULT_ACCOUNTANT,
) -> PrivacyPlan:
    """Smallest noise multiplier (to ~1% in ε) whose ε stays at or below the target."""
    _check(accountant, delta)
    reservation_amount(target_epsilon)
    if steps <= 0:
        raise AccountingError("steps must be positive")
    from opacus.accountants.utils import get_noise_multiplier  # loads torch: lazily

    sigma = float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
            epsilon_tolerance=0.01,
        )
    )
    eps = compute_epsilon(
        noise_multiplier=sigma,
        sample_rate=sample_rate,
        steps=steps,
        delta=delta,
        accountant=accountant,
    )
    # The search stops within a tolerance; never hand out a plan above the target.
    while eps > target_epsilon:
        sigma *= 1.001
        eps = compute_epsilon(
            noise_multiplier=sigma,
            sample_rate=sample_rate,
            steps=steps,
            delta=delta,
            accountant=accountant,
        )
    return PrivacyPlan(
        target_epsilon=float(target_epsilon),
        delta=float(delta),
        noise_multiplier=sigma,
        sample_rate=float(sample_rate),
        steps=int(steps),
        accountant=accountant,
        epsilon=eps,
    )
