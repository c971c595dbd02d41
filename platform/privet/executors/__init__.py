"""Where training jobs run: in the worker's process (`local`) or on a Ray cluster (`ray`).

- `base`: the `Executor` interface, `JobSpec`, `LocalExecutor` (privet.training.train);
- `distributed`: `DistributedWorld`, what a rank of a data-parallel run gives the trainer
  (torch.distributed sums and broadcasts), and `shard`;
- `ray_executor.RayExecutor`: N ranks as Ray actors over torch.distributed, data and
  weights sealed with a per-job transport key (extra `privet[ray]`);
- `settings.ExecutorSettings`: PRIVET_EXECUTOR, PRIVET_RAY_ADDRESS, PRIVET_RAY_*.

See docs/SCALING.md.
"""

import importlib
from typing import Any

from privet.executors.settings import ExecutorSettings, get_executor_settings

_LAZY = {"Executor": "base", "JobSpec": "base", "LocalExecutor": "base"}


def __getattr__(name: str) -> Any:
    """The training-side names load on first use, so settings alone never pull in torch."""
    if name not in _LAZY:
        raise AttributeError(f"module 'privet.executors' has no attribute {name!r}")
    return getattr(importlib.import_module(f"privet.executors.{_LAZY[name]}"), name)


__all__ = ["Executor", "ExecutorSettings", "JobSpec", "LocalExecutor", "get_executor_settings"]
