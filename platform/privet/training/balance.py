"""The class-balance choice of a config as per-label tensors, in label-index order.

Kept apart from the trainer so the engines and the trainer read one definition.
"""

from __future__ import annotations

import torch

from privet.training.config import TrainingConfig


def class_weight_tensor(
    config: TrainingConfig, label_names: list[str], device: torch.device | str = "cpu"
) -> torch.Tensor | None:
    """The configured class weights in label-index order (1 for a label without one)."""
    if not config.class_weights:
        return None
    weights = dict(config.class_weights)
    return torch.tensor([float(weights.get(name, 1.0)) for name in label_names], device=device)


def logit_adjustment_tensor(
    config: TrainingConfig, label_names: list[str], device: torch.device | str = "cpu"
) -> torch.Tensor | None:
    """The configured logit offsets in label-index order (the smallest for a label without
    one: treated as the rarest, as a label without a class weight is)."""
    if not config.logit_adjustment:
        return None
    offsets = dict(config.logit_adjustment)
    rarest = min(offsets.values())
    return torch.tensor([float(offsets.get(name, rarest)) for name in label_names], device=device)
