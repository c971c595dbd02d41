"""The step loop of one rank: sample, step, report progress, agree to stop.

The same loop runs a single-process run and every rank of a data-parallel one; the
`World` it is given says which rows are this rank's and how ranks agree (world.py).
`trainer.train_part` builds it from a `TrainingConfig` and turns what it did into a
`TrainingResult`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from privet.training import accounting
from privet.training.noise import SecureRandom
from privet.training.privacy import NonPrivateEngine, PrivateEngine, poisson_batch, split_physical
from privet.training.progress import CancelCheck, ProgressCallback, ProgressEvent, TrainingCancelled
from privet.training.world import World


class TrainingRows(Protocol):
    """A rank's training rows: `data.EncodedDataset`, or `augment.AugmentedRows` (K copies
    of each example, contiguous)."""

    def batch(self, indices: torch.Tensor | Sequence[int]) -> dict[str, torch.Tensor]: ...


@dataclass
class StepLoop:
    """One rank's engine, privacy plan (None without DP), schedule and random sources."""

    world: World
    n: int
    """Training rows over all ranks."""
    epochs: int
    total_steps: int
    logical_batch_size: int
    physical_batch_size: int
    """Examples per forward pass (with K augmented copies: the config's rows / K)."""
    engine: PrivateEngine | NonPrivateEngine
    plan: accounting.PrivacyPlan | None
    scheduler: torch.optim.lr_scheduler.LambdaLR | None
    sampling_gen: torch.Generator
    secure_rng: SecureRandom | None

    def spent(self) -> float | None:
        """ε spent so far (None without DP): a cancelled run reports it too."""
        return None if self.plan is None else self.engine.epsilon(self.plan.delta)

    def sample(self, i: int, order: torch.Tensor | None, local_n: int) -> torch.Tensor:
        """This rank's rows of step `i`'s logical batch: its part of the global Poisson
        sample, or of the i-th slice of the epoch's permutation without DP."""
        if self.plan is None:
            assert order is not None
            size = min(self.logical_batch_size, self.n)
            return self.world.local_part(order[i * size : (i + 1) * size])
        if self.secure_rng is not None:  # each rank draws its own shard's Bernoullis
            return poisson_batch(local_n, self.plan.sample_rate, secure_rng=self.secure_rng)
        drawn = poisson_batch(self.n, self.plan.sample_rate, generator=self.sampling_gen)
        return self.world.local_part(drawn)

    def run(
        self,
        encoded: TrainingRows | None,
        *,
        local_n: int,
        progress: ProgressCallback,
        should_cancel: CancelCheck,
        on_epoch_end: Callable[[int], bool] | None = None,
    ) -> tuple[float, int]:
        """Every step; returns the last (global mean) loss and the examples this rank saw.

        `on_epoch_end(epoch)` runs on every rank after each epoch (model selection); true
        stops the run there (it must agree across ranks). Raises TrainingCancelled, on
        every rank, when any rank's `should_cancel()` is true.
        """
        world = self.world
        last_loss, seen, step = float("nan"), 0, 0

        def cancel_between_batches() -> None:
            if should_cancel():
                raise TrainingCancelled(steps=step, epsilon_spent=self.spent())

        # Ranks can only agree to stop between steps; one process may stop between batches.
        before_batch = cancel_between_batches if world.size == 1 else None
        for epoch in range(1, self.epochs + 1):
            order = None if self.plan else torch.randperm(self.n, generator=self.sampling_gen)
            for i in range(self.total_steps // self.epochs):
                if world.any(should_cancel()):
                    raise TrainingCancelled(steps=step, epsilon_spent=self.spent())
                chunks = split_physical(self.sample(i, order, local_n), self.physical_batch_size)
                assert encoded is not None or not chunks
                batches = [_to(encoded.batch(c), world.device) for c in chunks]  # type: ignore[union-attr]
                loss, examples = self.engine.step(batches, before_batch=before_batch)
                if self.scheduler is not None:
                    self.scheduler.step()
                step += 1
                seen += examples
                loss, everywhere = world.mean_loss(loss, examples)
                if not math.isnan(loss):
                    last_loss = loss
                if world.is_head:
                    progress(
                        ProgressEvent(
                            step=step,
                            total_steps=self.total_steps,
                            epoch=epoch,
                            epochs=self.epochs,
                            loss=loss,
                            epsilon=self.spent(),
                            examples=everywhere,
                        )
                    )
            if on_epoch_end is not None and on_epoch_end(epoch):
                break
        return last_loss, seen


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}
