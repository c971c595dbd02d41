"""`TrainingConfig`: everything that decides a training run, and the checks it must pass.

Admission validates a request with it before any data is touched; the trainer records
all of it in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from privet.training import accounting
from privet.training.augment import Augmentation
from privet.training.catalog import DEFAULT_BASE_MODEL
from privet.training.privacy import GRAD_SAMPLE_MODES
from privet.training.strategies import Strategy

OPTIMIZERS = ("adamw", "sgd")
MAX_SELECTION_SHARE = 0.5
"""At most half the target ε for selection: the model itself must get the most."""


class ConfigError(ValueError):
    """A training configuration that is invalid or not allowed."""


class NonPrivateRefused(ConfigError):
    """Non-private training was asked for on data that may hold personal data."""


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides a training run (all of it is recorded in the result)."""

    base_model: str = DEFAULT_BASE_MODEL
    strategy: str = "top-2"
    """`full`, `bitfit`, `head` or `top-<k>` (top k encoder layers + head); the head is the
    classifier, plus the [CLS] pooler on `cls`-pooled base models."""
    max_length: int = 64
    epochs: int = 3
    logical_batch_size: int = 512
    """Expected Poisson batch size (DP) or exact batch size (non-private) per step."""
    physical_batch_size: int = 64
    """Examples per forward/backward pass; only memory depends on it, not the result."""
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    """`constant` or `linear` (linear decay to zero over the run)."""
    head_learning_rate: float | None = None
    """Learning rate of the head (classifier, and pooler if any); default: `learning_rate`. The head
    starts random and must move far in few steps, while under DP every encoder coordinate
    takes a noise step of about ±lr with Adam: a high head rate with a low encoder rate lets
    the head learn without the noise wrecking the pretrained encoder."""
    optimizer: str = "adamw"
    """`adamw`, or `sgd` (momentum 0.9). Under DP noise, Adam's per-coordinate scaling turns
    noise-dominated coordinates into ±lr random steps; SGD scales noise and signal alike,
    which is usually better on small datasets with few trainable parameters."""
    seed: int = 0
    private: bool = True
    target_epsilon: float | None = 8.0
    delta: float | None = None
    """Defaults to 1/(10·n); must be below 1/n."""
    accountant: str = accounting.DEFAULT_ACCOUNTANT
    max_grad_norm: float = 1.0
    grad_sample_mode: str = "bk"
    """`bk` (book-keeping ghost clipping, default), `ghost` or `hooks` (Opacus)."""
    secure_mode: bool = False
    """Noise and Poisson sampling from a CSPRNG (unreproducible; see the README)."""
    contains_personal_data: bool = True
    """Non-private training requires the caller to state this is False."""
    eval_batch_size: int = 128
    class_weights: tuple[tuple[str, float], ...] = ()
    """Per-class weights in (0, 1] (label, weight); empty: none. Under DP each example's
    clipped gradient is multiplied by its class's weight, so it still contributes at most C
    (see recipe.py); a label without a weight has weight 1."""
    logit_adjustment: tuple[tuple[str, float], ...] = ()
    """Per-class logit offsets (label, tau·log prior) added to the logits in the training loss
    only, CE(z + offset, y) (logit adjustment, Menon et al. 2021); prediction uses the raw
    logits. Each example's gradient is still clipped to C and the noise is unchanged, so the
    DP guarantee is the same; a label without an offset gets the smallest (the rarest's)."""
    dropout: float | None = None
    """Hidden dropout of the encoder and head; None keeps the base model's own."""
    label_smoothing: float = 0.0
    selection_share: float = 0.0
    """Share of the target ε for model selection (selection.py): per-epoch validation
    releases, keep-best and early stopping. 0: off, nothing released, nothing spent."""
    patience: int | None = None
    """With selection: stop after this many epochs without a better noisy macro-F1
    (None: run every epoch, still keeping the best)."""
    augment_multiplicity: int = 1
    """K augmented copies of each sampled example, their gradients averaged before
    clipping (augment.py; ε unchanged). 1 with no rate: off."""
    augment_token_dropout: float = 0.0
    augment_span_deletion: float = 0.0
    augment_word_order: float = 0.0

    @property
    def augmentation(self) -> Augmentation:
        return Augmentation(
            multiplicity=self.augment_multiplicity,
            token_dropout=self.augment_token_dropout,
            span_deletion=self.augment_span_deletion,
            word_order=self.augment_word_order,
        )

    def validate(self, n: int) -> None:
        if not self.private:
            if self.contains_personal_data:
                raise NonPrivateRefused(
                    "non-private training is only allowed on data declared to hold no "
                    "personal data; train with differential privacy instead"
                )
        else:
            if self.target_epsilon is None or not self.target_epsilon > 0:
                raise ConfigError("private training needs a positive target ε")
            if self.delta is not None and not 0 < self.delta < 1.0 / n:
                raise ConfigError(f"δ must be in (0, 1/n) = (0, {1.0 / n:.3g}), got {self.delta}")
            if self.max_grad_norm <= 0:
                raise ConfigError("max_grad_norm must be positive")
            if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
                raise ConfigError(f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}")
        if self.epochs < 1 or self.logical_batch_size < 1 or self.physical_batch_size < 1:
            raise ConfigError("epochs and batch sizes must be positive")
        if self.max_length < 2:
            raise ConfigError("max_length must be at least 2")
        if self.lr_schedule not in ("constant", "linear"):
            raise ConfigError("lr_schedule must be constant or linear")
        if self.head_learning_rate is not None and not self.head_learning_rate > 0:
            raise ConfigError("head_learning_rate must be positive")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}")
        self._validate_regularisation()
        Strategy.parse(self.strategy)

    def _validate_regularisation(self) -> None:
        if self.weight_decay < 0:
            raise ConfigError("weight_decay must not be negative")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout must be in [0, 1)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError("label_smoothing must be in [0, 1)")
        if any(not 0.0 < w <= 1.0 for _, w in self.class_weights):
            raise ConfigError(
                "class weights must be in (0, 1]: more would raise the DP sensitivity"
            )
        if not 0.0 <= self.selection_share <= MAX_SELECTION_SHARE:
            raise ConfigError(f"selection_share must be in [0, {MAX_SELECTION_SHARE}]")
        if self.selection_share > 0 and not self.private:
            raise ConfigError("model selection is a DP mechanism: it needs private training")
        if self.patience is not None and self.patience < 1:
            raise ConfigError("patience must be at least 1 epoch")
        if any(not math.isfinite(o) or o > 0.0 for _, o in self.logit_adjustment):
            raise ConfigError("logit adjustments must be finite and ≤ 0 (tau·log of a prior)")
        if self.class_weights and self.logit_adjustment:
            raise ConfigError("choose class weights or logit adjustment, not both")
        problem = self.augmentation.problem()
        if problem is not None:
            raise ConfigError(problem)
        if self.augment_multiplicity > 1 and self.private and self.grad_sample_mode != "bk":
            raise ConfigError(
                "augment_multiplicity > 1 needs grad_sample_mode bk: Opacus's per-sample "
                "hooks would clip each copy, not each example's mean over its copies"
            )
        if self.class_weights and self.private and self.grad_sample_mode != "bk":
            raise ConfigError(
                "class weights need grad_sample_mode bk (they scale clipped gradients)"
            )
