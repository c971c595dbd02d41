"""The DP guarantee a finished private run records: ε (training and model selection
together), recomputable by anyone from the numbers on record."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from privet.training import accounting
from privet.training.config import TrainingConfig


@dataclass(frozen=True)
class PrivacyRecord:
    """The DP guarantee of a finished run; ε == accounting.compute_epsilon(the other four)."""

    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    accountant: str
    max_grad_norm: float
    target_epsilon: float
    grad_sample_mode: str
    secure_mode: bool
    epsilon_training: float | None = None
    """ε of the training steps alone (equal to `epsilon` without model selection)."""
    epsilon_selection: float = 0.0
    """What the validation releases add: epsilon - epsilon_training."""
    selection_noise_multiplier: float = 0.0
    selection_releases: int = 0


def privacy_record(
    config: TrainingConfig,
    plan: accounting.PrivacyPlan,
    *,
    steps_run: int,
    tracked: Callable[[float], float],
) -> PrivacyRecord:
    """The run's DP guarantee, ε recomputed from the numbers on record (the steps run are
    checked against the engine's own accountant, `tracked(δ)`). With model selection the
    guarantee is the full schedule's, training and every planned release: early stopping
    depends on the data, so the ε of the steps actually run would not be a valid claim."""
    epsilon_of = partial(
        accounting.compute_epsilon,
        noise_multiplier=plan.noise_multiplier,
        sample_rate=plan.sample_rate,
        delta=plan.delta,
        accountant=plan.accountant,
    )  # of the plan's schedule, for a number of steps (and selection releases)
    run = epsilon_of(steps=steps_run)
    tracked_epsilon = tracked(plan.delta)
    if not math.isclose(tracked_epsilon, run, rel_tol=1e-9, abs_tol=1e-12):
        raise RuntimeError(f"accountant drift: tracked ε {tracked_epsilon} != recomputed {run}")
    steps, epsilon, training = steps_run, run, run
    if plan.selection_releases:
        steps, training = plan.steps, plan.epsilon_training
        epsilon = epsilon_of(
            steps=plan.steps,
            selection_noise_multiplier=plan.selection_noise_multiplier,
            selection_releases=plan.selection_releases,
        )
    return PrivacyRecord(
        epsilon=epsilon,
        delta=plan.delta,
        noise_multiplier=plan.noise_multiplier,
        sample_rate=plan.sample_rate,
        steps=steps,
        accountant=plan.accountant,
        max_grad_norm=config.max_grad_norm,
        target_epsilon=plan.target_epsilon,
        grad_sample_mode=config.grad_sample_mode,
        secure_mode=config.secure_mode,
        epsilon_training=training,
        epsilon_selection=max(0.0, epsilon - training),
        selection_noise_multiplier=plan.selection_noise_multiplier,
        selection_releases=plan.selection_releases,
    )
