"""Data-parallel DP-SGD: the world of one rank of an N-process run (torch.distributed).

Each rank runs the trainer's own loop (`privet.training.trainer.train_part`) on its shard
of the rows; this module only supplies what the loop cannot know alone: how ranks
combine tensors. Sharding, noise on rank 0 only, the global sample rate and the agreed
cancellation are the trainer's (privet/training/world.py says how and why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from privet.executors.base import DEVICE_SETTING, PRECISION_SETTING
from privet.training.data import LabelledTexts
from privet.training.device import check_precision, resolve_device
from privet.training.world import ReduceOp, World

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}


@dataclass(frozen=True)
class DistributedWorld(World):
    """One rank of a torch.distributed process group (initialised by the caller)."""

    def _connected(self) -> bool:
        return self.size > 1 and dist.is_available() and dist.is_initialized()

    def all_reduce_(self, tensors: Sequence[torch.Tensor], *, op: ReduceOp = "sum") -> None:
        """One all-reduce for all `tensors`, as one flat buffer."""
        if not self._connected() or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat, op=_OPS[op])
        offset = 0
        for t in tensors:
            size = t.numel()
            t.copy_(flat[offset : offset + size].view_as(t))
            offset += size

    def broadcast_(self, tensors: Sequence[torch.Tensor]) -> None:
        if self._connected():
            for tensor in tensors:
                dist.broadcast(tensor.data, src=0)


def rank_world(rank: int, size: int, device_spec: str, precision: str) -> DistributedWorld:
    """Rank `rank`'s world on the device this process was given (checked here, on its node)."""
    device = resolve_device(device_spec, setting=DEVICE_SETTING)
    checked = check_precision(precision, device, setting=PRECISION_SETTING)
    return DistributedWorld(rank, size, device, checked)


def shard(data: LabelledTexts, rank: int, world_size: int) -> LabelledTexts | None:
    """Rows rank, rank+N, rank+2N, ... (None when the shard is empty)."""
    texts = list(data.texts)[rank::world_size]
    if not texts:
        return None
    return LabelledTexts(texts, list(data.labels)[rank::world_size])
