"""One logical DP-SGD step over many physical batches, built from Opacus parts.

We assemble Opacus's components ourselves instead of calling `make_private`:
- hooks are attached with `wrap_model=False`, so there is no `_module.` wrapper and the
  fine-tuned state dict keeps plain Hugging Face names;
- the caller supplies Poisson-sampled logical batches (see `poisson_batch`), split into
  physical batches that fit in memory; Opacus's skip-step signal accumulates clipped
  gradients across them, and noise is added exactly once per logical step — the same
  protocol as Opacus's `BatchMemoryManager`, without its DataLoader plumbing;
- an empty Poisson batch still takes a (pure-noise) step, as the accounting assumes.

Per-sample gradient modes:
- `bk` (default): book-keeping ghost clipping (see bookkeeping.py): one backward pass,
  no weight-gradient recomputation; Opacus's optimizer still adds the noise and steps
  the accountant. Fastest and leanest on BERT (tests/benchmarks).
- `ghost`: Opacus's ghost clipping (two backward passes); the fastest pure-Opacus mode.
- `hooks`: Opacus's classic per-sample gradients; slow and memory-hungry on BERT.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any

import torch
from opacus.accountants import create_accountant
from opacus.grad_sample.utils import prepare_module
from opacus.optimizers import get_optimizer_class
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
from torch import nn

from privet.training.accountants import MECHANISMS
from privet.training.bookkeeping import BookKeepingClipper
from privet.training.noise import SecureRandom, secure_gaussian
from privet.training.world import LOCAL, World

GRAD_SAMPLE_MODES = ("bk", "ghost", "hooks")
Batch = dict[str, torch.Tensor]


def poisson_batch(
    n: int,
    sample_rate: float,
    *,
    generator: torch.Generator | None = None,
    secure_rng: SecureRandom | None = None,
) -> torch.Tensor:
    """Indices of a Poisson sample: each example is in independently with prob. q."""
    if secure_rng is not None:
        draws = secure_rng.uniform(n)
    else:
        draws = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.nonzero(draws < sample_rate, as_tuple=False).flatten()


def split_physical(indices: torch.Tensor, physical_batch_size: int) -> list[torch.Tensor]:
    """Split one logical batch into physical batches of at most `physical_batch_size`."""
    if len(indices) == 0:
        return []
    return list(torch.split(indices, physical_batch_size))


def _secure_add_noise(self: Any) -> None:
    """Opacus's add_noise, with the noise drawn from a CSPRNG (see noise.py)."""
    std = float(self.noise_multiplier) * float(self.max_grad_norm)
    for p in self.params:
        _check_processed_flag(p.summed_grad)
        noise = secure_gaussian(self._privet_secure_rng, std, p.summed_grad)
        p.grad = (p.summed_grad + noise).view_as(p)
        _mark_as_processed(p.summed_grad)


def _no_noise(self: Any) -> None:
    """What a rank other than the head adds: nothing (its clipped sum, unchanged)."""
    for p in self.params:
        _check_processed_flag(p.summed_grad)
        p.grad = p.summed_grad.view_as(p).clone()
        _mark_as_processed(p.summed_grad)


def _spread_over(engine: PrivateEngine, world: World) -> None:
    """Opacus's `DistributedDPOptimizer` as two overrides of the engine's optimizer.

    Noise: only the head adds it (seeded or CSPRNG), and counts it. Reduction: before
    scaling, every rank's noised or clipped sums are summed over the world, then divided
    by the global expected batch size the engine was built with. In a world of one both
    are the single-process optimizer's own steps.
    """
    opt: Any = engine.optimizer
    add_noise = opt.add_noise  # bound: Opacus's or the CSPRNG override
    scale_grad = opt.scale_grad

    def noise_on_head(self: Any) -> None:
        if not world.is_head:
            _no_noise(self)
            return
        add_noise()
        engine.noise_additions += 1

    def sum_then_scale(self: Any) -> None:
        world.sum_grads_(self.params)
        scale_grad()

    opt.add_noise = types.MethodType(noise_on_head, opt)
    opt.scale_grad = types.MethodType(sum_then_scale, opt)


def _inputs(batch: Batch) -> Batch:
    return {k: v for k, v in batch.items() if k != "labels"}


def adjusted_logits(logits: torch.Tensor, offsets: torch.Tensor | None) -> torch.Tensor:
    """Logit adjustment (Menon et al. 2021): the training loss sees z + tau·log(prior).

    The offsets are constants computed once from the version's label counts (metadata the
    recipe already reads, like n), so each example's loss (and gradient) still depends on
    that example alone: per-sample clipping bounds it by C and
    the noise is unchanged, so the DP guarantee is the same. Prediction uses the raw z.
    """
    return logits if offsets is None else logits + offsets


class PrivateEngine:
    """Clipping, noise and accounting for a model whose trainable parameters are set.

    In a `world` of N ranks each engine clips its rank's rows, the head alone adds the
    noise, and the sums are reduced before the step (see world.py).
    """

    private = True

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        noise_multiplier: float,
        max_grad_norm: float,
        sample_rate: float,
        expected_batch_size: int,
        accountant: str = "prv",
        grad_sample_mode: str = "bk",
        generator: torch.Generator | None = None,
        secure_rng: SecureRandom | None = None,
        world: World = LOCAL,
        class_weights: torch.Tensor | None = None,
        logit_adjustment: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        copies: int = 1,
    ) -> None:
        if grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise ValueError(f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}")
        if copies > 1 and grad_sample_mode != "bk":
            raise ValueError("augmentation multiplicity needs grad_sample_mode bk")
        self.copies = copies
        """Rows per example (augment.py): each example's copies are averaged, then clipped."""
        self.model = model
        self.mode = grad_sample_mode
        self.sample_rate = sample_rate
        self.params = [p for p in model.parameters() if p.requires_grad]
        model.train()  # Opacus captures nothing in eval mode
        self.hooks: Any = None
        self.clipper: BookKeepingClipper | None = None
        if grad_sample_mode == "bk":
            self.clipper = BookKeepingClipper(model, max_grad_norm=max_grad_norm)
        else:
            kwargs: dict[str, Any] = {"batch_first": True, "loss_reduction": "mean"}
            if grad_sample_mode == "ghost":
                kwargs["max_grad_norm"] = max_grad_norm
            self.hooks = prepare_module(
                model, grad_sample_mode=grad_sample_mode, wrap_model=False, **kwargs
            )
        # bk hands Opacus clipped gradient sums in p.grad, like ghost clipping does.
        optim_class = get_optimizer_class(
            clipping="flat",
            distributed=False,
            grad_sample_mode="ghost" if grad_sample_mode == "bk" else grad_sample_mode,
        )
        self.optimizer = optim_class(
            optimizer,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            expected_batch_size=expected_batch_size,
            loss_reduction="mean",
            generator=generator,
        )
        if secure_rng is not None:
            self.optimizer._privet_secure_rng = secure_rng
            self.optimizer.add_noise = types.MethodType(_secure_add_noise, self.optimizer)
        self.noise_additions = 0
        self.world = world
        _spread_over(self, world)
        self.accountant = create_accountant(mechanism=MECHANISMS[accountant])
        self.optimizer.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate))
        if class_weights is not None and self.clipper is None:
            raise ValueError("class weights need grad_sample_mode bk")
        self.class_weights = class_weights
        self.logit_adjustment = logit_adjustment
        self.label_smoothing = label_smoothing
        base_criterion = nn.CrossEntropyLoss(reduction="mean", label_smoothing=label_smoothing)
        self.criterion: Any = base_criterion
        if grad_sample_mode == "ghost":
            self.criterion = DPLossFastGradientClipping(
                self.hooks, self.optimizer, base_criterion, "mean"
            )
        self.steps = 0

    def step(
        self, physical_batches: Sequence[Batch], before_batch: Callable[[], None] | None = None
    ) -> tuple[float, int]:
        """One noised optimizer step over a logical batch; returns (mean loss, examples)."""
        batches = [b for b in physical_batches if len(b["labels"]) > 0]
        total_loss = 0.0
        examples = 0
        if not batches:
            # Empty Poisson batch: the update is pure noise, and it is still a step.
            self.optimizer.zero_grad(set_to_none=True)
            for p in self.params:
                if self.mode in ("bk", "ghost"):
                    p.grad = torch.zeros_like(p)
                else:
                    p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)  # type: ignore[attr-defined]
            self.optimizer.signal_skip_step(do_skip=False)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.steps += 1
            return float("nan"), 0
        for i, batch in enumerate(batches):
            if before_batch is not None:
                before_batch()
            self.optimizer.zero_grad(set_to_none=True)
            with self.world.autocast():  # bf16 forward; the loss and all that follows fp32
                logits = self.model(**_inputs(batch)).logits.float()
            logits = adjusted_logits(logits, self.logit_adjustment)
            size = len(batch["labels"]) // self.copies
            if self.clipper is not None:
                labels = batch["labels"]
                losses = nn.functional.cross_entropy(
                    logits, labels, reduction="none", label_smoothing=self.label_smoothing
                )
                per_example = labels[:: self.copies]
                weights = None if self.class_weights is None else self.class_weights[per_example]
                self.clipper.backward(losses, weights, copies=self.copies)
                total_loss += float(losses.detach().sum().item()) / self.copies
            else:
                loss = self.criterion(logits, batch["labels"])
                loss.backward()
                total_loss += float(loss.item()) * size
            examples += size
            self.optimizer.signal_skip_step(do_skip=i < len(batches) - 1)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return total_loss / examples, examples

    def epsilon(self, delta: float) -> float:
        return float(self.accountant.get_epsilon(delta=delta)) if self.steps else 0.0

    def close(self) -> None:
        """Detach hooks and per-parameter attributes from the model."""
        if self.clipper is not None:
            self.clipper.close()
        if self.hooks is not None:
            self.hooks.cleanup()


class NonPrivateEngine:
    """Plain accumulated SGD step: only for data declared free of personal data.

    Labels that are rows of probabilities (a teacher's soft labels: distillation) train on
    the KL divergence at `temperature`, scaled by its square (Hinton et al., 2015)."""

    private = False

    noise_additions = 0

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        world: World = LOCAL,
        class_weights: torch.Tensor | None = None,
        logit_adjustment: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        temperature: float = 1.0,
        copies: int = 1,
    ) -> None:
        self.model = model
        self.logit_adjustment = logit_adjustment
        self.optimizer = optimizer
        self.copies = copies
        """Rows per example (augment.py): the loss is each example's mean over its copies."""
        self.world = world
        self.temperature = temperature
        self.criterion = nn.CrossEntropyLoss(
            reduction="sum", weight=class_weights, label_smoothing=label_smoothing
        )
        self.steps = 0
        model.train()

    def step(
        self, physical_batches: Sequence[Batch], before_batch: Callable[[], None] | None = None
    ) -> tuple[float, int]:
        """One step over the world's logical batch; returns this rank's (mean loss, examples)."""
        batches = [b for b in physical_batches if len(b["labels"]) > 0]
        examples = sum(len(b["labels"]) for b in batches) // self.copies
        everywhere = self.world.total(examples)
        if not everywhere:
            return float("nan"), 0
        self.optimizer.zero_grad(set_to_none=True)
        total_loss = 0.0
        for batch in batches:
            if before_batch is not None:
                before_batch()
            with self.world.autocast():
                logits = self.model(**_inputs(batch)).logits.float()
            logits = adjusted_logits(logits, self.logit_adjustment)
            loss = self._loss(logits, batch["labels"]) / self.copies
            (loss / everywhere).backward()  # type: ignore[no-untyped-call]
            total_loss += float(loss.item())
        self.world.sum_grads_([p for p in self.model.parameters() if p.requires_grad])
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return total_loss / max(1, examples), examples

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if labels.dim() == 1:
            loss: torch.Tensor = self.criterion(logits, labels)
            return loss
        t = self.temperature
        log_q = nn.functional.log_softmax(logits / t, dim=-1)
        return nn.functional.kl_div(log_q, labels, reduction="sum") * (t * t)

    def epsilon(self, delta: float) -> float | None:
        return None

    def close(self) -> None:
        return None
