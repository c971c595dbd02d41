"""Privacy accounting: (ε, δ) ↔ noise multiplier for Poisson-sampled DP-SGD.

Everything the budget ledger needs is a pure function of four recorded numbers —
noise multiplier sigma, sample rate q, number of steps, δ — plus the accountant's name.
`compute_epsilon` recomputes ε from them with a fresh accountant; the ε a training run
reports is exactly that value, so anyone holding the four numbers can check it.

PRV (Gopi et al. 2021) is the default: it is tight and agrees with Google's PLD
accountant to well under 1%. RDP is available; it is looser (reports a larger ε for the
same noise), so it spends budget faster for the same model.

Model selection (selection.py) adds a second mechanism: after each epoch, the validation
confusion matrix released with Gaussian noise of std `selection_noise_multiplier` counts
(sensitivity 1), i.e. `selection_releases` Gaussian mechanisms with sample rate 1. Both go
into one accountant as a heterogeneous composition, so the total is tight rather than the
sum of two separate ε.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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
    """ε the plan spends (training and selection together), recomputed from the recorded
    numbers; never above the target."""
    selection_noise_multiplier: float = 0.0
    """Noise std, in counts, of each validation release (0: no model selection)."""
    selection_releases: int = 0
    """Validation releases accounted for (one per epoch; 0: no model selection)."""
    training_epsilon: float | None = None
    """ε of the training steps alone (None: no selection, so `epsilon` is all training)."""

    @property
    def epsilon_training(self) -> float:
        return self.epsilon if self.training_epsilon is None else self.training_epsilon

    @property
    def epsilon_selection(self) -> float:
        """What the selection releases add to the total (total minus training alone)."""
        return max(0.0, self.epsilon - self.epsilon_training)


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
    selection_noise_multiplier: float = 0.0,
    selection_releases: int = 0,
) -> float:
    """ε spent by `steps` Poisson-sampled Gaussian steps, composed with
    `selection_releases` Gaussian releases of sensitivity 1 and std
    `selection_noise_multiplier` (sample rate 1); the independent recomputation."""
    _check(accountant, delta)
    history = []
    if steps > 0:
        if not 0.0 < sample_rate <= 1.0:
            raise AccountingError(f"sample rate must be in (0, 1], got {sample_rate}")
        history.append((float(noise_multiplier), float(sample_rate), int(steps)))
    if selection_releases > 0:
        history.append((float(selection_noise_multiplier), 1.0, int(selection_releases)))
    if not history:
        return 0.0
    if any(sigma <= 0.0 for sigma, _, _ in history):
        return math.inf
    from opacus.accountants import create_accountant  # loads torch: lazily

    from privet.training.accountants import MECHANISMS

    acc = create_accountant(mechanism=MECHANISMS[accountant])
    acc.history = history
    # Opacus's PRV takes log(1 - q), which is -inf at q = 1 and handled; silence numpy.
    with np.errstate(divide="ignore"):
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
    selection_share: float = 0.0,
    selection_releases: int = 0,
) -> PrivacyPlan:
    """Smallest noise multiplier (to ~1% in ε) whose ε stays at or below the target.

    With model selection (`selection_share` > 0 and `selection_releases` > 0) the training
    noise is planned for (1 - share) of the target alone, and the selection noise is then
    the smallest whose composition with training stays at or below the target: the
    selection adds about share x target to what training alone would spend."""
    _check(accountant, delta)
    reservation_amount(target_epsilon)
    if steps <= 0:
        raise AccountingError("steps must be positive")
    if selection_share > 0.0 and selection_releases > 0:
        return _plan_with_selection(
            target_epsilon=target_epsilon,
            delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
            share=selection_share,
            releases=selection_releases,
        )
    from opacus.accountants.utils import get_noise_multiplier  # loads torch: lazily

    from privet.training.accountants import MECHANISMS

    sigma = float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=MECHANISMS[accountant],
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


def _plan_with_selection(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str,
    share: float,
    releases: int,
) -> PrivacyPlan:
    """Training planned for (1 - share) of the target; selection fills the rest."""
    if not 0.0 < share < 1.0:
        raise AccountingError(f"the selection share must be in (0, 1), got {share}")
    training = plan(
        target_epsilon=target_epsilon * (1.0 - share),
        delta=delta,
        sample_rate=sample_rate,
        steps=steps,
        accountant=accountant,
    )

    def total(sigma_v: float) -> float:
        return compute_epsilon(
            noise_multiplier=training.noise_multiplier,
            sample_rate=sample_rate,
            steps=steps,
            delta=delta,
            accountant=accountant,
            selection_noise_multiplier=sigma_v,
            selection_releases=releases,
        )

    # ε falls as sigma_v grows (towards training alone, below the target): bracket the
    # smallest sigma_v within the target, then bisect geometrically to 0.5%.
    hi = 1.0
    while total(hi) > target_epsilon:
        hi *= 2.0
    lo = hi / 2.0
    while lo > 1e-3 and total(lo) <= target_epsilon:
        hi, lo = lo, lo / 2.0
    while hi / lo > 1.005:
        mid = math.sqrt(hi * lo)
        if total(mid) <= target_epsilon:
            hi = mid
        else:
            lo = mid
    return PrivacyPlan(
        target_epsilon=float(target_epsilon),
        delta=float(delta),
        noise_multiplier=training.noise_multiplier,
        sample_rate=float(sample_rate),
        steps=int(steps),
        accountant=accountant,
        epsilon=total(hi),
        selection_noise_multiplier=hi,
        selection_releases=int(releases),
        training_epsilon=training.epsilon,
    )
