"""Progress reporting and cancellation, shared by the CLI progress bar and the jobs layer.

The trainer calls `on_progress` after every logical (noised) step and asks `should_cancel`
before each one; a cancelled run raises `TrainingCancelled`, which still says how much ε
was spent, because a partial run spends privacy too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProgressEvent:
    """One finished logical step."""

    step: int
    total_steps: int
    epoch: int
    """1-based epoch the step belongs to."""
    epochs: int
    loss: float
    """Mean training loss over the examples of this step (nan for an empty Poisson batch)."""
    epsilon: float | None
    """ε spent so far (None for non-private training)."""
    examples: int
    """Examples in this step's Poisson batch."""


class ProgressCallback(Protocol):
    def __call__(self, event: ProgressEvent, /) -> None: ...


class CancelCheck(Protocol):
    def __call__(self) -> bool: ...


class TrainingCancelled(Exception):
    """Training stopped at the caller's request; no model is produced."""

    def __init__(self, *, steps: int, epsilon_spent: float | None) -> None:
        super().__init__(f"training cancelled after {steps} steps (ε spent: {epsilon_spent})")
        self.steps = steps
        self.epsilon_spent = epsilon_spent


def never_cancel() -> bool:
    return False


def ignore_progress(event: ProgressEvent, /) -> None:
    return None
