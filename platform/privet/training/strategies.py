"""Which parameters train: `full`, `top-k` encoder layers + head, `bitfit`, or `head` only.

Fewer trainable parameters means less noise added per step (DP noise grows with the
dimension) and a shorter backward pass, which is usually the best DP trade-off for small
data. `bitfit` trains every bias and LayerNorm parameter of the encoder plus the head
(about 1% of MiniLM-L6's weights, spread over every layer): DP-BiTFiT (Bu et al., 2022)
keeps nearly all of full fine-tuning's accuracy at a fraction of the noise dimension.
The strategy and the exact parameter names are recorded with the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

STRATEGY_KINDS = ("full", "top-k", "bitfit", "head")


class StrategyError(ValueError):
    """Unknown strategy, or one the model cannot support."""


@dataclass(frozen=True)
class Strategy:
    """A trainable-parameter strategy; `k` is used only by `top-k`."""

    kind: str = "top-k"
    k: int = 2

    def __post_init__(self) -> None:
        if self.kind not in STRATEGY_KINDS:
            raise StrategyError(f"unknown strategy {self.kind!r}; use one of {STRATEGY_KINDS}")
        if self.kind == "top-k" and self.k < 1:
            raise StrategyError("top-k needs k >= 1")

    @property
    def label(self) -> str:
        return f"top-{self.k}" if self.kind == "top-k" else self.kind

    @classmethod
    def parse(cls, text: str) -> Strategy:
        """Parse `full`, `bitfit`, `head`, or `top-<k>` (e.g. `top-2`)."""
        text = text.strip().lower()
        if text in ("full", "bitfit", "head"):
            return cls(kind=text)
        match = re.fullmatch(r"top-(\d+)", text)
        if match:
            return cls(kind="top-k", k=int(match.group(1)))
        raise StrategyError(f"unknown strategy {text!r}; use full, bitfit, head or top-<k>")


@dataclass(frozen=True)
class AppliedStrategy:
    """What a strategy did to a model: the record kept with the result."""

    strategy: str
    trainable_parameter_names: tuple[str, ...]
    trainable_parameters: int
    total_parameters: int


_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")


def _is_head(name: str, base_prefix: str) -> bool:
    """Anything outside the base encoder (classifier) plus the [CLS] pooler, if any."""
    return not name.startswith(f"{base_prefix}.") or name.startswith(f"{base_prefix}.pooler.")


def is_head_parameter(model: nn.Module, name: str) -> bool:
    """Whether a parameter belongs to the (freshly initialised) classification head."""
    return _is_head(name, str(getattr(model, "base_model_prefix", "bert")))


def apply_strategy(model: nn.Module, strategy: Strategy) -> AppliedStrategy:
    """Set `requires_grad` on every parameter according to `strategy`."""
    base_prefix = str(getattr(model, "base_model_prefix", "bert"))
    names = [n for n, _ in model.named_parameters()]
    layers = sorted({int(m.group(1)) for n in names if (m := _LAYER.search(n))})
    if strategy.kind == "top-k" and strategy.k > len(layers):
        raise StrategyError(f"top-{strategy.k} asked for, but the model has {len(layers)} layers")
    top = set(layers[-strategy.k :]) if strategy.kind == "top-k" else set()
    norms = {
        f"{module_name}.{param_name}"
        for module_name, module in model.named_modules()
        if isinstance(module, nn.LayerNorm)
        for param_name, _ in module.named_parameters(recurse=False)
    }
    trainable: list[str] = []
    total = 0
    count = 0
    for name, param in model.named_parameters():
        total += param.numel()
        if strategy.kind == "full":
            train = True
        elif strategy.kind == "bitfit":
            train = _is_head(name, base_prefix) or name.endswith(".bias") or name in norms
        else:
            match = _LAYER.search(name)
            train = _is_head(name, base_prefix) or (
                match is not None and int(match.group(1)) in top
            )
        param.requires_grad_(train)
        if train:
            trainable.append(name)
            count += param.numel()
    return AppliedStrategy(
        strategy=strategy.label,
        trainable_parameter_names=tuple(trainable),
        trainable_parameters=count,
        total_parameters=total,
    )
