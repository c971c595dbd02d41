"""Model selection without leaking: per-epoch validation released through a DP mechanism.

After each epoch the model's confusion matrix on the validation split is released with
the Gaussian mechanism: under add/remove neighbours one validation example changes one
cell by 1, so the L2 sensitivity is 1, and N(0, sigma_v²) noise on every cell makes each
release a Gaussian mechanism of noise multiplier sigma_v (sample rate 1). Its ε is
accounted together with training (accounting.plan / compute_epsilon) and charged to the
same budget. Everything after the release is post-processing, hence free:

- accuracy and macro-F1 computed from the noisy matrix (cells clamped at 0);
- keep-best: the weights of the epoch with the best noisy macro-F1, kept in memory only;
- early stopping after `patience` epochs without a new best.

Early stopping spends less than planned, but the stopping time depends on the data, so
the guarantee claimed is the full schedule's (a privacy filter, not an odometer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from privet.training.accounting import PrivacyPlan
from privet.training.config import ConfigError, TrainingConfig
from privet.training.data import EncodedDataset, LabelledTexts, encode
from privet.training.evaluation import metrics_from_predictions, predict
from privet.training.noise import SecureRandom, secure_gaussian
from privet.training.world import World

AUTO = "auto"
SELECTION_SHARE = 0.1
"""Share of the target ε the recipe gives to selection: the training noise is planned for
90% of it, which costs training little (noise grows slowly with a smaller ε) while the
validation releases get enough ε to tell a good epoch from a bad one."""
MIN_VALIDATION_ROWS = 200
"""`auto` selects only with at least this many validation rows: at the share above and
~10 epochs the noise is ~10 counts per cell, which must stay small against the cells."""
PATIENCE = 3
"""Epochs without a new best noisy macro-F1 before stopping early."""


@dataclass(frozen=True)
class ValidationRelease:
    """One epoch's DP release and the metrics derived from it (post-processing)."""

    epoch: int
    accuracy: float
    macro_f1: float
    best: bool
    """A new best noisy macro-F1 at this epoch (its weights are then the kept ones)."""
    noisy_confusion_matrix: tuple[tuple[float, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SelectionRecord:
    """What model selection did; the ε split is in the privacy record."""

    share: float
    noise_multiplier: float
    releases_planned: int
    patience: int | None
    kept_epoch: int
    epochs_run: int
    stopped_early: bool
    validation_examples: int
    epochs: tuple[ValidationRelease, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def release_confusion(
    matrix: Sequence[Sequence[int]],
    noise_multiplier: float,
    *,
    generator: torch.Generator | None = None,
    secure_rng: SecureRandom | None = None,
) -> list[list[float]]:
    """The Gaussian mechanism on a confusion matrix: every cell + N(0, sigma_v²)."""
    if noise_multiplier <= 0.0:
        raise ValueError("the selection noise multiplier must be positive")
    exact = torch.tensor([list(row) for row in matrix], dtype=torch.float64)
    if secure_rng is not None:
        noise = secure_gaussian(secure_rng, noise_multiplier, exact)
    else:
        noise = torch.randn(exact.shape, generator=generator, dtype=torch.float64)
        noise *= noise_multiplier
    return (exact + noise).tolist()


def noisy_metrics(noisy: Sequence[Sequence[float]]) -> tuple[float, float]:
    """(accuracy, macro-F1) of a released matrix, cells clamped at 0 (post-processing)."""
    m = [[max(0.0, float(c)) for c in row] for row in noisy]
    k = len(m)
    total = sum(sum(row) for row in m)
    f1s = []
    for i in range(k):
        predicted = sum(m[r][i] for r in range(k))
        actual = sum(m[i])
        f1s.append(2 * m[i][i] / (predicted + actual) if predicted + actual > 0 else 0.0)
    accuracy = sum(m[i][i] for i in range(k)) / total if total > 0 else 0.0
    return accuracy, (sum(f1s) / k if k else 0.0)


class Selector:
    """Keep-best and early stopping over the noisy per-epoch releases (head rank only)."""

    def __init__(
        self,
        *,
        noise_multiplier: float,
        patience: int | None,
        generator: torch.Generator | None = None,
        secure_rng: SecureRandom | None = None,
    ) -> None:
        self.noise_multiplier = noise_multiplier
        self.patience = patience
        self.generator = generator
        self.secure_rng = secure_rng
        self.releases: list[ValidationRelease] = []
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] = {}
        self.since_best = 0

    def release(self, epoch: int, matrix: Sequence[Sequence[int]]) -> list[list[float]]:
        return release_confusion(
            matrix, self.noise_multiplier, generator=self.generator, secure_rng=self.secure_rng
        )

    def observe(self, epoch: int, model: nn.Module, noisy: Sequence[Sequence[float]]) -> bool:
        """Record epoch `epoch`'s release; keep the weights on a new best; True: stop."""
        accuracy, macro_f1 = noisy_metrics(noisy)
        best = macro_f1 > self.best_score
        if best:
            self.best_score, self.best_epoch, self.since_best = macro_f1, epoch, 0
            # In memory only (the trainable tensors: frozen ones never change).
            self.best_state = {
                name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad
            }
        else:
            self.since_best += 1
        rounded = tuple(tuple(round(c, 3) for c in row) for row in noisy)
        self.releases.append(ValidationRelease(epoch, accuracy, macro_f1, best, rounded))
        return self.patience is not None and self.since_best >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Put the kept epoch's weights back into `model`."""
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in self.best_state:
                    p.copy_(self.best_state[name].to(p.device))

    def finish(
        self, model: nn.Module, config: TrainingConfig, validation_examples: int
    ) -> SelectionRecord:
        """Restore the kept epoch's weights into `model`; the run's selection record."""
        self.restore(model)
        return self.record(
            share=config.selection_share,
            releases_planned=config.epochs,
            epochs=config.epochs,
            validation_examples=validation_examples,
        )

    def record(
        self, *, share: float, releases_planned: int, epochs: int, validation_examples: int
    ) -> SelectionRecord:
        return SelectionRecord(
            share=share,
            noise_multiplier=self.noise_multiplier,
            releases_planned=releases_planned,
            patience=self.patience,
            kept_epoch=self.best_epoch,
            epochs_run=len(self.releases),
            stopped_early=len(self.releases) < epochs,
            validation_examples=validation_examples,
            epochs=tuple(self.releases),
        )


def epoch_hook(
    selector: Selector | None,
    model: nn.Module,
    validation: EncodedDataset | None,
    *,
    labels: Sequence[str],
    batch_size: int,
    device: torch.device,
    agree: Callable[[bool], bool],
) -> Callable[[int], bool]:
    """The step loop's end-of-epoch call: the head evaluates, releases and decides; every
    rank learns the decision through `agree` (World.any)."""

    def on_epoch_end(epoch: int) -> bool:
        stop = False
        if selector is not None and validation is not None:
            pred = predict(model, validation, batch_size=batch_size, device=device)
            exact = metrics_from_predictions(validation.labels.tolist(), pred.tolist(), labels)
            stop = selector.observe(epoch, model, selector.release(epoch, exact.confusion_matrix))
        return agree(stop)

    return on_epoch_end


def build(
    config: TrainingConfig,
    plan: PrivacyPlan | None,
    model: nn.Module,
    validation: LabelledTexts | None,
    *,
    tokenizer: Any,
    label_names: list[str],
    world: World,
    secure_rng: SecureRandom | None,
) -> tuple[Selector | None, Callable[[int], bool] | None, int]:
    """(selector on the head, the step loop's epoch hook, validation rows) of a run; all
    empty when its plan releases nothing. Raises ConfigError when the head has no
    validation split to select on."""
    if plan is None or plan.selection_releases == 0:
        return None, None, 0
    encoded = None
    selector = None
    if world.is_head:
        if validation is None:
            raise ConfigError("model selection needs the dataset version's validation split")
        encoded = encode(
            validation, tokenizer, label_names=label_names, max_length=config.max_length
        )
        selector = Selector(
            noise_multiplier=plan.selection_noise_multiplier,
            patience=config.patience,
            generator=None if secure_rng else torch.Generator().manual_seed(config.seed * 2 + 3),
            secure_rng=secure_rng,
        )
    hook = epoch_hook(
        selector,
        model,
        encoded,
        labels=label_names,
        batch_size=config.eval_batch_size,
        device=world.device,
        agree=world.any,
    )
    return selector, hook, 0 if encoded is None else len(encoded)


@dataclass(frozen=True)
class RecipeChoice:
    name: str
    value: Any
    reason: str


@dataclass(frozen=True)
class SelectionInputs:
    """What the recipe's selection rule may look at (public facts only)."""

    private: bool
    selection: str
    validation_rows: int | None
    epochs: int
    overrides: dict[str, Any] = field(default_factory=dict)


def recipe_choices(i: SelectionInputs) -> list[RecipeChoice]:
    """`selection_share` and `patience` for the auto recipe, each with its reason."""
    off = None
    asked = i.selection == "on" or float(i.overrides.get("selection_share") or 0.0) > 0.0
    if asked and i.private and i.validation_rows == 0:
        raise ConfigError("model selection needs a validation split: the dataset version has none")
    if not i.private:
        off = "off: no DP, the model is evaluated on the test split only"
    elif i.selection == "none":
        off = "off: selection none (nothing is released, no ε spent on it)"
    elif i.validation_rows is None:
        off = "off: the dataset version records no split counts"
    elif not i.validation_rows:
        off = "off: the dataset version has no validation split"
    elif i.epochs < 2:
        off = "off: one epoch leaves nothing to choose between"
    elif i.selection == AUTO and i.validation_rows < MIN_VALIDATION_ROWS:
        off = (
            f"off: {i.validation_rows} validation rows < {MIN_VALIDATION_ROWS}; the noisy "
            "counts would swamp the differences between epochs"
        )
    if off is not None:
        return [RecipeChoice("selection_share", 0.0, off), RecipeChoice("patience", None, off)]
    return [
        RecipeChoice(
            "selection_share",
            SELECTION_SHARE,
            f"{SELECTION_SHARE:g} of ε for the per-epoch validation releases (Gaussian "
            "mechanism on the confusion matrix, sensitivity 1), composed with training in "
            "one accountant; training noise is planned for the rest",
        ),
        RecipeChoice(
            "patience",
            PATIENCE,
            f"stop after {PATIENCE} epochs without a better noisy macro-F1 (free: "
            "post-processing; the ε claimed stays the full schedule's)",
        ),
    ]
