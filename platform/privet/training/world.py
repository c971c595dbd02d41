"""The processes one training run is spread over: the trainer's "world".

`train` runs the same loop in every process of a run; the world says which part of the
run this process is and how the processes combine what they computed. Locally there is
one process: `World()`, rank 0 of 1, where every reduction is the identity. A
data-parallel run (`privet.executors.distributed.DistributedWorld`) overrides only
`all_reduce_` and `broadcast_`, the way Opacus's `DistributedDPOptimizer` overrides only
noise and reduction. Everything else about data-parallel DP-SGD is written here and in
the trainer, once, for both:

- **Data**: the training rows are sharded by index (row i lives on rank i mod N). Each
  step every rank keeps the part of one *global* Poisson sample (rate q = logical batch /
  n over all n rows) that falls in its shard (`local_part`). With seeded sampling every
  rank draws the same n uniforms, so the global sample is exactly the one a single
  process draws; with `secure_mode` each rank draws its own shard's Bernoullis from a
  CSPRNG: the same distribution. The sample rate the accountant needs is the global q.
- **Clipping** is local: each rank sums its clipped per-sample gradients.
- **Noise once per step**: only the head (rank 0) adds N(0, sigma²C²) noise; one all-reduce
  (sum) then gives every rank Σ clipped + one noise draw, divided by the *global*
  expected batch size: the single-process estimator up to the order of float sums. Every
  rank takes the same step from the same (broadcast) weights, so replicas never diverge.
- **Accounting**: sigma, q, steps and δ are the single-process plan for the global batch.
- **Cancellation** is agreed before every logical step (`any`), so all ranks stop at
  the same step and none waits forever in a collective.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from privet.training.device import Precision, autocast

ReduceOp = Literal["sum", "max"]


@dataclass(frozen=True)
class World:
    """One process (this class) or one rank of N (a subclass that can communicate)."""

    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: Precision = "fp32"
    """``bf16``: forward passes under bfloat16 autocast (training/device.py)."""

    def autocast(self) -> AbstractContextManager[Any]:
        """The context every forward pass of the run runs in."""
        return autocast(self.device, self.precision)

    @property
    def is_head(self) -> bool:
        """Rank 0 adds the noise, reports progress, evaluates and returns the weights."""
        return self.rank == 0

    def all_reduce_(self, tensors: Sequence[torch.Tensor], *, op: ReduceOp = "sum") -> None:
        """Combine `tensors` over all ranks, in place; one process has nothing to combine."""

    def broadcast_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Make rank 0's `tensors` every rank's, in place; one process has them already."""

    def local_part(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global index sample, as indices into its shard."""
        if self.size == 1:
            return indices
        mine = indices[indices % self.size == self.rank]
        return torch.div(mine, self.size, rounding_mode="floor")

    def any(self, flag: bool) -> bool:
        """True on every rank when true on any (so every rank stops at the same step)."""
        if self.size == 1:
            return flag
        agreed = torch.tensor([1.0 if flag else 0.0], device=self.device)  # NCCL: on the GPU
        self.all_reduce_([agreed], op="max")
        return bool(agreed.item() > 0)

    def total(self, count: int) -> int:
        """`count` summed over all ranks."""
        if self.size == 1:
            return count
        summed = torch.tensor([float(count)], device=self.device)
        self.all_reduce_([summed])
        return int(summed.item())

    def mean_loss(self, loss: float, examples: int) -> tuple[float, int]:
        """The step's mean loss and example count over all ranks (for progress)."""
        if self.size == 1:
            return loss, examples
        stats = torch.tensor(
            [0.0 if math.isnan(loss) else loss * examples, float(examples)],
            dtype=torch.float64,
            device=self.device,
        )
        self.all_reduce_([stats])
        everywhere = int(stats[1].item())
        return (float(stats[0].item()) / everywhere if everywhere else float("nan")), everywhere

    def sum_grads_(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Sum the gradients over ranks; a rank that saw no rows contributes zeros."""
        if self.size == 1:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.all_reduce_([p.grad for p in params if p.grad is not None])


LOCAL = World()
