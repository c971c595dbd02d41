"""The `auto` recipe: every training hyperparameter chosen from public facts, with a reason.

A team's data is private, so tuning on it spends ε on every trial. The recipe therefore
looks only at what is public about a job — training rows n, per-class row counts (the
dataset version's split record), (ε, δ), the base model and the strategy — and its rules
come from the DP fine-tuning literature, with constants measured on public data only
(SST-2 and SMS; TREC and waimai_10k kept for confirmation; README.md has the figures):

- Li et al. 2022, "Large language models can be strong differentially private learners":
  large batches, enough steps, every example clipped (small C), learning rate tied to C;
- De et al. 2022, "Unlocking high-accuracy differentially private image classification
  through scale": large batches with many steps, the noise on the mean gradient sigma·C/B as
  the quantity to keep small;
- Mehta et al. 2023, "Large scale transfer learning for differentially private image
  classification": with little data or a strict ε, train few parameters on top of a strong
  pretrained encoder (a linear head is often best).

`choose` is pure and deterministic (the same inputs give the same recipe, always); the
noise multiplier is then `accounting.plan`'s for the chosen schedule (`with_noise`, or the
trainer at start). A field the caller set explicitly always wins and is recorded as "set
by the caller"; every other field records why the recipe chose its value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from privet.training import accounting, augment, selection
from privet.training.catalog import DEFAULT_BASE_MODEL
from privet.training.config import ConfigError, TrainingConfig
from privet.training.strategies import Strategy

AUTO = "auto"
CALLER = "set by the caller"

SAMPLE_FRACTION = 1 / 8
"""Expected logical batch as a fraction of n: large batches (Li et al.), ~8 steps an epoch."""
MIN_BATCH = 32
MAX_BATCH = 1024
TARGET_STEPS = 80
"""Steps to aim for: the SST-2/SMS runs that reached the README's gaps took ~100 steps."""
MIN_EPOCHS, MAX_EPOCHS = 3, 30
HEAD_ONLY_BELOW = 1000.0
"""n·ε under which only the head trains (Mehta et al.: little signal → fewest parameters)."""
CLIP_NORM = 1.0
ENCODER_LR_SGD, HEAD_LR_SGD = 0.3, 1.0
"""Momentum-SGD rates at C = 1, measured on SST-2 and SMS (README); they scale as 1/C."""
ADAM_LR = 5e-4
"""DP-Adam rate for `full`/`top-k` (Li et al. 2022, at every example clipped)."""
IMBALANCE_THRESHOLD = 3.0
"""Largest/smallest class ratio from which `class_balance: auto` balances the classes."""
BALANCE_TEMPER = 0.5
"""w_c = (min count / count_c) ** 0.5: halfway to full balance, so the majority classes
keep more of their signal (noise does not shrink with the weights)."""
LOGIT_ADJUST = "logit_adjust"
LOGIT_ADJUST_TAU = 1.0
"""tau of the logit adjustment: 1 is Menon et al.'s Fisher-consistent choice for the
balanced error (no tuning on the data)."""
BALANCE_METHODS = (AUTO, "on", LOGIT_ADJUST, "none")
"""`class_balance` values: `on` is the class weights, `logit_adjust` the logit adjustment."""
RARE_SHARE = 0.10
"""`class_balance: auto` takes logit adjustment when the rarest class holds less than this
share of the training rows (and the class ratio is at least IMBALANCE_THRESHOLD); fixed from
the calibration sets' class shares alone before their runs (SMS 13 %: none; the rare sets 3 %
and 5 %): training/README.md."""
AUTO_BALANCE = LOGIT_ADJUST
"""What `class_balance: auto` does with a rare class, chosen on the rare calibration sets by
the rule written down before the runs (logit adjustment when its macro-F1 is at least no
balancing's - 0.5 points on both): training/README.md."""
AUTO_BALANCE_EVIDENCE = (
    "2,000 rows, ε 3: sms_rare (3 % spam) no balancing 0.492 macro-F1, logit adjustment 0.689; "
    "sst2_rare (5 % negative) 0.487 and 0.487; training/README.md"
)
"""The figures behind AUTO_BALANCE, recorded as the reason of every `auto` job it applies to."""
NP_STRATEGY, NP_EPOCHS, NP_LR, NP_BATCH = "full", 6, 1e-4, 32
"""Non-private: a full fine-tune, AdamW (the calibration grid's best; README)."""


@dataclass(frozen=True)
class RecipeInputs:
    """What the recipe may look at: public facts of the job, never its rows."""

    n: int
    label_counts: Mapping[str, int] | None = None
    target_epsilon: float | None = 8.0
    delta: float | None = None
    base_model: str = DEFAULT_BASE_MODEL
    strategy: str = AUTO
    private: bool = True
    accountant: str = accounting.DEFAULT_ACCOUNTANT
    class_balance: str = AUTO
    """`auto` (AUTO_BALANCE when the rarest class is under RARE_SHARE of the rows), `on`
    (class weights), `logit_adjust` or `none`."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """TrainingConfig fields the caller set explicitly: they win."""
    validation_rows: int | None = None
    selection: str = AUTO
    """Model selection on DP validation releases: `auto`, `on` or `none` (selection.py)."""


@dataclass(frozen=True)
class Choice:
    value: Any
    reason: str
    source: str = AUTO
    """`auto` (the recipe chose it) or `set by the caller`."""


@dataclass(frozen=True)
class Recipe:
    config: TrainingConfig
    choices: dict[str, Choice]
    inputs: RecipeInputs

    def reasons(self) -> dict[str, str]:
        return {k: f"{c.value}: {c.reason}" for k, c in self.choices.items()}

    def to_dict(self) -> dict[str, Any]:
        """The record a job keeps (JSON-ready)."""
        i = self.inputs
        return {
            "recipe": "auto",
            "inputs": {
                "n": i.n,
                "label_counts": dict(sorted((i.label_counts or {}).items())),
                "target_epsilon": i.target_epsilon,
                "delta": i.delta,
                "base_model": i.base_model,
                "strategy": i.strategy,
                "private": i.private,
                "class_balance": i.class_balance,
                "validation_rows": i.validation_rows,
                "selection": i.selection,
            },
            "choices": {
                k: {"value": _plain(c.value), "source": c.source, "reason": c.reason}
                for k, c in self.choices.items()
            },
        }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return {str(k): v for k, v in value} if value and isinstance(value[0], tuple) else []
    return value


class _Builder:
    """Resolves fields in dependency order; an override wins over every rule."""

    def __init__(self, inputs: RecipeInputs) -> None:
        self.inputs = inputs
        self.values: dict[str, Any] = {}
        self.choices: dict[str, Choice] = {}

    def set(self, name: str, value: Any, reason: str) -> Any:
        if name in self.inputs.overrides:
            value, choice = (
                self.inputs.overrides[name],
                Choice(self.inputs.overrides[name], CALLER, CALLER),
            )
        else:
            choice = Choice(value, reason)
        self.values[name] = value
        self.choices[name] = choice
        return value


def logit_adjustment(
    label_counts: Mapping[str, int], tau: float = LOGIT_ADJUST_TAU
) -> dict[str, float]:
    """Per-class logit offsets tau·log(prior_c) ≤ 0, prior_c = count_c / total (Menon et al.
    2021); a class with no rows counts as the rarest (a prior of 0 has no logarithm)."""
    total = sum(c for c in label_counts.values() if c > 0)
    smallest = min(c for c in label_counts.values() if c > 0)
    return {
        k: min(0.0, tau * math.log(max(c, smallest) / total))
        for k, c in sorted(label_counts.items())
    }


def imbalance_ratio(label_counts: Mapping[str, int] | None) -> float:
    """Largest class count over the smallest (1.0 without counts)."""
    counts = [c for c in (label_counts or {}).values() if c > 0]
    return max(counts) / min(counts) if len(counts) >= 2 else 1.0


def rarest_share(label_counts: Mapping[str, int] | None) -> float:
    """The smallest class's share of the rows (1.0 without counts, or with one class)."""
    counts = [c for c in (label_counts or {}).values() if c > 0]
    return min(counts) / sum(counts) if len(counts) >= 2 else 1.0


def auto_balance(label_counts: Mapping[str, int] | None) -> tuple[str, str]:
    """(method, why) of `class_balance: auto`: a function of the label counts alone."""
    ratio, share = imbalance_ratio(label_counts), rarest_share(label_counts)
    if not label_counts:
        return "none", "off (no label counts)"
    if ratio < IMBALANCE_THRESHOLD:
        return "none", f"off: class ratio {ratio:.2g} < {IMBALANCE_THRESHOLD:g}"
    if share >= RARE_SHARE:
        return "none", (
            f"off: the rarest class holds {share:.1%} of the rows, not under {RARE_SHARE:.0%} "
            "(no balancing was best on SMS at 13 %; training/README.md)"
        )
    return AUTO_BALANCE, (
        f"the rarest class holds {share:.1%} of the rows, under {RARE_SHARE:.0%}: auto = "
        f"{AUTO_BALANCE}, chosen on the rare calibration sets ({AUTO_BALANCE_EVIDENCE})"
    )


def class_weights(
    label_counts: Mapping[str, int], temper: float = BALANCE_TEMPER
) -> dict[str, float]:
    """Per-class weights in (0, 1]: w_c = (min count / count_c) ** temper; the rarest is 1."""
    smallest = min(c for c in label_counts.values() if c > 0)
    return {k: (smallest / c) ** temper if c > 0 else 1.0 for k, c in sorted(label_counts.items())}


def _strategy(b: _Builder) -> str:
    i = b.inputs
    if i.strategy != AUTO:
        Strategy.parse(i.strategy)
        return str(b.set("strategy", i.strategy, CALLER))  # an override: the caller's
    if not i.private:
        return str(
            b.set(
                "strategy",
                NP_STRATEGY,
                "non-private: a full fine-tune, as a team training without DP would",
            )
        )
    signal = i.n * float(i.target_epsilon or 0.0)
    if signal < HEAD_ONLY_BELOW:
        return str(
            b.set(
                "strategy",
                "head",
                f"n·ε = {signal:g} < {HEAD_ONLY_BELOW:g}: so little signal that only the "
                "classification head trains (fewest noisy coordinates; Mehta et al. 2023)",
            )
        )
    return str(
        b.set(
            "strategy",
            "bitfit",
            "biases, LayerNorms and the head (~31k of MiniLM-L6's 22.7M parameters): DP noise "
            "grows with the trainable coordinates, and DP-BiTFiT (Bu et al. 2022) keeps most "
            "of full fine-tuning's accuracy; best measured on SST-2/SMS at ε = 8 (README)",
        )
    )


def _schedule(b: _Builder) -> None:
    """Logical batch and epochs (hence the sample rate q = B/n and the steps T)."""
    n = b.inputs.n
    if not b.inputs.private:
        b.set("logical_batch_size", min(n, NP_BATCH), "non-private: batch 32")
        b.set("epochs", NP_EPOCHS, "non-private: 6 passes (small data)")
        return
    batch = min(n, MAX_BATCH, max(MIN_BATCH, math.ceil(n * SAMPLE_FRACTION)))
    batch = int(
        b.set(
            "logical_batch_size",
            batch,
            f"⌈n/8⌉ within [{MIN_BATCH}, {MAX_BATCH}] and ≤ n: large Poisson batches "
            "(q ≈ 1/8) keep the noise on the mean gradient, sigma·C/B, small (Li et al. 2022; "
            "De et al. 2022)",
        )
    )
    per_epoch = max(1, round(n / min(batch, n)))
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_STEPS / per_epoch)))
    b.set(
        "epochs",
        epochs,
        f"≈{TARGET_STEPS} steps ({per_epoch} a epoch) within [{MIN_EPOCHS}, {MAX_EPOCHS}] "
        "epochs: DP-SGD needs many steps; more data at a fixed q does not add steps",
    )


def _rates(b: _Builder, strategy: str) -> None:
    """Optimizer, learning rates (tied to the clipping norm), schedule, regularisation."""
    if not b.inputs.private:
        b.set("optimizer", "adamw", "non-private: AdamW")
        b.set("learning_rate", NP_LR, "non-private: 1e-4 (calibration grid)")
        b.set("head_learning_rate", None, "non-private: the encoder's rate")
        b.set("max_grad_norm", CLIP_NORM, "unused without DP")
    else:
        clip = float(
            b.set(
                "max_grad_norm",
                CLIP_NORM,
                "per-example gradient norms of MiniLM-L6 at the start measured 2 to 5 on "
                "SST-2/SMS, so C = 1 clips nearly every example: the small-C regime of "
                "Li et al. 2022, where each example contributes a normalised gradient",
            )
        )
        few = Strategy.parse(strategy).kind in ("bitfit", "head")
        if few:
            b.set(
                "optimizer",
                "sgd",
                "momentum SGD: under DP noise Adam turns noise-only "
                "coordinates into ±lr steps; SGD scales noise and signal alike (README)",
            )
        else:
            b.set("optimizer", "adamw", "DP-Adam for many trainable parameters (Li et al. 2022)")
        if b.values["optimizer"] == "sgd":
            b.set(
                "learning_rate",
                ENCODER_LR_SGD / clip,
                f"{ENCODER_LR_SGD}/C: measured on "
                "SST-2/SMS at C = 1; the step is lr·C when every example is clipped",
            )
            b.set(
                "head_learning_rate",
                HEAD_LR_SGD / clip,
                f"{HEAD_LR_SGD}/C: the head starts random and must move far in few steps",
            )
        else:
            b.set("learning_rate", ADAM_LR, "Li et al. 2022's DP-Adam rate")
            b.set("head_learning_rate", ADAM_LR * 10, "10x the encoder's: a random head")
    b.set("lr_schedule", "linear", "linear decay to 0: large early steps, small late noise")
    b.set("weight_decay", 0.0, "none: DP noise already regularises (Li et al. use none)")
    b.set("dropout", None, "the base model's own (MiniLM-L6: 0.1)")
    b.set("label_smoothing", 0.0, "none")


def _balance(b: _Builder) -> None:
    """Class balance from the version's label counts: logit adjustment, weights, or none."""
    i = b.inputs
    if i.class_balance not in BALANCE_METHODS:
        raise ConfigError(
            f"class_balance must be one of {BALANCE_METHODS}, got {i.class_balance!r}"
        )
    ratio = imbalance_ratio(i.label_counts)
    method, why = auto_balance(i.label_counts) if i.class_balance == AUTO else (i.class_balance, "")
    if i.class_balance == AUTO and not i.private:
        method, why = "none", "off: non-private (auto's rule was calibrated on DP runs only)"
    if i.class_balance == "none" or not i.label_counts:
        why = "class_balance none" if i.class_balance == "none" else "no label counts"
        method, off = "none", f"off ({why})"
    elif i.class_balance == AUTO:
        off = why if method == "none" else f"off: class_balance auto = {method}"
    else:
        off = f"off: class_balance {method}"
    counts = i.label_counts or {}
    if method == "on":
        b.set(
            "class_weights",
            tuple(sorted(class_weights(counts).items())),
            f"class ratio {ratio:.3g}: w_c = (min count/count_c)^{BALANCE_TEMPER} ≤ 1 from the "
            "version's label counts, applied to each clipped per-example gradient, so "
            "each example still contributes at most C (the DP sensitivity is unchanged)",
        )
    else:
        b.set("class_weights", (), off)
    if method == LOGIT_ADJUST:
        auto = f"{why}; " if i.class_balance == AUTO else ""
        b.set(
            "logit_adjustment",
            tuple(sorted(logit_adjustment(counts).items())),
            f"{auto}class ratio {ratio:.3g}: logit adjustment (Menon et al. 2021), the loss is "
            f"CE(z + {LOGIT_ADJUST_TAU:g}·log prior_c, y) with the prior from the version's "
            "label counts, prediction uses z; each example's gradient is still clipped "
            "to C and the noise is unchanged (the DP guarantee is the same), and unlike class "
            "weights it does not shrink the clipped signal",
        )
    else:
        b.set("logit_adjustment", (), off)


def choose(inputs: RecipeInputs) -> Recipe:
    """The recipe for `inputs` (pure, deterministic; no noise multiplier yet)."""
    if inputs.n < 1:
        raise accounting.AccountingError("need at least one training example")
    if inputs.strategy != AUTO:
        inputs = replace(inputs, overrides={**inputs.overrides, "strategy": inputs.strategy})
    b = _Builder(inputs)
    strategy = _strategy(b)
    _schedule(b)
    _rates(b, strategy)
    _balance(b)
    for c in selection.recipe_choices(
        selection.SelectionInputs(
            private=inputs.private,
            selection=inputs.selection,
            validation_rows=inputs.validation_rows,
            epochs=int(b.values["epochs"]),
            overrides=dict(inputs.overrides),
        )
    ):
        b.set(c.name, c.value, c.reason)
    for name, value, reason in augment.recipe_choices(inputs.overrides):
        b.set(name, value, reason)
    if inputs.private:
        delta = inputs.delta if inputs.delta is not None else accounting.default_delta(inputs.n)
        b.choices["delta"] = Choice(
            delta,
            CALLER if inputs.delta is not None else "1/(10·n): well below 1/n",
            CALLER if inputs.delta is not None else AUTO,
        )
        b.choices["noise_multiplier"] = Choice(
            None,
            "set when training starts (the job's result): accounting.plan's smallest sigma "
            "whose ε is at most the target for q = B/n, these steps and δ",
        )
    else:
        delta = None
    config = TrainingConfig(
        base_model=inputs.base_model,
        private=inputs.private,
        target_epsilon=inputs.target_epsilon if inputs.private else None,
        delta=delta,
        accountant=inputs.accountant,
        contains_personal_data=inputs.private,
        **b.values,
    )
    config = replace(config, **{k: v for k, v in inputs.overrides.items() if k not in b.values})
    return Recipe(config=config, choices=b.choices, inputs=inputs)


def with_noise(recipe: Recipe) -> Recipe:
    """The recipe with its noise multiplier: accounting.plan's smallest sigma with ε ≤ target."""
    config = recipe.config
    if not config.private or config.target_epsilon is None or config.delta is None:
        return recipe
    q, steps = accounting.steps_for(
        n=recipe.inputs.n, logical_batch_size=config.logical_batch_size, epochs=config.epochs
    )
    plan = accounting.plan(
        target_epsilon=config.target_epsilon,
        delta=config.delta,
        sample_rate=q,
        steps=steps,
        accountant=config.accountant,
        selection_share=config.selection_share,
        selection_releases=config.epochs if config.selection_share > 0 else 0,
    )
    choices = dict(recipe.choices)
    choices["noise_multiplier"] = Choice(
        plan.noise_multiplier,
        f"accounting.plan: the smallest sigma whose ε ({plan.accountant}) is ≤ "
        f"{config.target_epsilon:g} for q = {q:.4g}, {steps} steps, δ = {config.delta:.3g} "
        f"(ε {plan.epsilon:.4g})",
    )
    return replace(recipe, choices=choices)
