"""`train(...)`: fine-tune a catalog model on in-memory data and return everything to record.

The caller (a job worker) passes decrypted data in memory and gets back metrics, the
full privacy record and the fine-tuned weights as safetensors *bytes*: nothing is
written to disk here, so the caller can encrypt the weights before they are stored.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import opacus
import torch
import transformers
from safetensors.torch import save as save_safetensors

from privet.training import accounting
from privet.training.catalog import (
    DEFAULT_BASE_MODEL,
    POOLING_METADATA_KEY,
    BaseModelSpec,
    Catalog,
    load_base_model,
)
from privet.training.data import LabelledTexts, encode, label_names_for
from privet.training.evaluation import EvaluationResult, evaluate
from privet.training.noise import SecureRandom
from privet.training.privacy import (
    GRAD_SAMPLE_MODES,
    NonPrivateEngine,
    PrivateEngine,
    poisson_batch,
    split_physical,
)
from privet.training.progress import (
    CancelCheck,
    ProgressCallback,
    ProgressEvent,
    TrainingCancelled,
    ignore_progress,
    never_cancel,
)
from privet.training.strategies import (
    AppliedStrategy,
    Strategy,
    apply_strategy,
    is_head_parameter,
)

NON_PRIVATE_LABEL = "non-private (no differential privacy)"
PRIVATE_LABEL = "differentially private (DP-SGD)"


OPTIMIZERS = ("adamw", "sgd")


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
        Strategy.parse(self.strategy)


@dataclass(frozen=True)
class PrivacyRecord:
    """The DP guarantee of a finished run; ε == accounting.compute_epsilon(the other four)."""

    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    accountant: str
    max_grad_norm: float
    target_epsilon: float
    grad_sample_mode: str
    secure_mode: bool


@dataclass(frozen=True)
class TrainingResult:
    """What a run produced. `weights` are safetensors bytes of the full classifier."""

    private: bool
    privacy_label: str
    privacy: PrivacyRecord | None
    metrics: EvaluationResult
    strategy: AppliedStrategy
    config: TrainingConfig
    seed: int
    epochs: int
    steps: int
    label_names: tuple[str, ...]
    base_model: str
    base_model_sha256: str
    pooling: str
    """How the classifier reads the encoder (`cls` or `mean`; catalog.POOLINGS)."""
    train_examples: int
    eval_examples: int
    final_loss: float
    duration_s: float
    versions: dict[str, str]
    weights: bytes = field(repr=False)

    @property
    def weights_sha256(self) -> str:
        return hashlib.sha256(self.weights).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (no weights; their digest instead)."""
        out = asdict(self)
        out.pop("weights")
        out["weights_sha256"] = self.weights_sha256
        return out


def weights_to_bytes(model: torch.nn.Module, metadata: dict[str, str]) -> bytes:
    """Serialize a state dict to safetensors bytes in memory (never to a file).

    The header is rewritten with sorted keys: safetensors orders metadata arbitrarily,
    and equal weights must give equal bytes (and digests) for lineage to mean anything.
    """
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    raw = save_safetensors(state, metadata=metadata)
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + raw[8 + size :]


def weights_metadata(
    config: TrainingConfig,
    spec: BaseModelSpec,
    label_names: list[str],
    privacy: PrivacyRecord | None,
) -> dict[str, str]:
    """The safetensors header metadata of fine-tuned weights: enough to rebuild and label
    the model from the file alone (base model, pooling, labels, privacy)."""
    metadata = {
        "format": "pt",
        "base_model": config.base_model,
        "base_model_sha256": spec.weights_sha256,
        POOLING_METADATA_KEY: spec.pooling,
        "privacy": PRIVATE_LABEL if config.private else NON_PRIVATE_LABEL,
        "label_names": json.dumps(label_names),
    }
    if privacy is not None:
        metadata["epsilon"] = repr(privacy.epsilon)
        metadata["delta"] = repr(privacy.delta)
    return metadata


def library_versions() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "opacus": opacus.__version__,
    }


def privacy_plan(config: TrainingConfig, n: int) -> accounting.PrivacyPlan:
    """The noise multiplier, sample rate, steps and δ a private run on `n` rows will use.

    Pure and cheap: admission can call it to show (and check) what will be spent before
    any data is touched; `train` uses exactly this plan.
    """
    config.validate(n)
    if not config.private or config.target_epsilon is None:
        raise ConfigError("only private training has a privacy plan")
    sample_rate, total_steps = accounting.steps_for(
        n=n, logical_batch_size=config.logical_batch_size, epochs=config.epochs
    )
    delta = config.delta if config.delta is not None else accounting.default_delta(n)
    return accounting.plan(
        target_epsilon=config.target_epsilon,
        delta=delta,
        sample_rate=sample_rate,
        steps=total_steps,
        accountant=config.accountant,
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(config: TrainingConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The configured optimizer over the model's trainable parameters (head in its own group)."""
    head_lr = config.head_learning_rate or config.learning_rate
    groups: dict[bool, list[torch.nn.Parameter]] = {True: [], False: []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups[is_head_parameter(model, name)].append(param)
    param_groups = [
        {"params": params, "lr": head_lr if head else config.learning_rate}
        for head, params in groups.items()
        if params
    ]
    lr, decay = config.learning_rate, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=0.9, weight_decay=decay)
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=decay)


def train(
    config: TrainingConfig,
    train_data: LabelledTexts,
    eval_data: LabelledTexts,
    *,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    catalog: Catalog | None = None,
) -> TrainingResult:
    """Fine-tune `config.base_model` on `train_data`, evaluate on `eval_data`.

    Raises ConfigError/NonPrivateRefused before touching the data when the request is not
    allowed, TrainingCancelled when `should_cancel()` turns true (checked before every
    physical batch), and CatalogError when the base model fails its digest check.
    """
    started = time.monotonic()
    progress = progress or ignore_progress
    should_cancel = should_cancel or never_cancel
    n = len(train_data.texts)
    config.validate(n)
    strategy = Strategy.parse(config.strategy)
    label_names = label_names_for(train_data)
    _seed_everything(config.seed)

    loaded = load_base_model(
        config.base_model, num_labels=len(label_names), seed=config.seed, catalog=catalog
    )
    model = loaded.model
    applied = apply_strategy(model, strategy)
    train_enc = encode(
        train_data, loaded.tokenizer, label_names=label_names, max_length=config.max_length
    )
    eval_enc = encode(
        eval_data, loaded.tokenizer, label_names=label_names, max_length=config.max_length
    )

    optimizer = make_optimizer(config, model)
    sampling_gen = torch.Generator().manual_seed(config.seed * 2 + 1)
    noise_gen = torch.Generator().manual_seed(config.seed * 2 + 2)
    secure_rng = SecureRandom() if config.secure_mode else None

    plan: accounting.PrivacyPlan | None = None
    engine: PrivateEngine | NonPrivateEngine
    if config.private:
        plan = privacy_plan(config, n)
        total_steps = plan.steps
        engine = PrivateEngine(
            model,
            optimizer,
            noise_multiplier=plan.noise_multiplier,
            max_grad_norm=config.max_grad_norm,
            sample_rate=plan.sample_rate,
            expected_batch_size=max(1, round(plan.sample_rate * n)),
            accountant=config.accountant,
            grad_sample_mode=config.grad_sample_mode,
            generator=None if secure_rng else noise_gen,
            secure_rng=secure_rng,
        )
        steps_per_epoch = total_steps // config.epochs
    else:
        batch = min(config.logical_batch_size, n)
        steps_per_epoch = math.ceil(n / batch)
        total_steps = steps_per_epoch * config.epochs
        engine = NonPrivateEngine(model, optimizer)

    scheduler = (
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: max(0.0, 1.0 - s / max(1, total_steps))
        )
        if config.lr_schedule == "linear"
        else None
    )

    last_loss = float("nan")
    try:
        step = 0
        for epoch in range(1, config.epochs + 1):
            if not config.private:
                order = torch.randperm(n, generator=sampling_gen)
            for i in range(steps_per_epoch):
                if should_cancel():
                    raise TrainingCancelled(steps=step, epsilon_spent=_spent(engine, plan))
                if config.private:
                    assert plan is not None
                    logical = poisson_batch(
                        n, plan.sample_rate, generator=sampling_gen, secure_rng=secure_rng
                    )
                else:
                    size = min(config.logical_batch_size, n)
                    logical = order[i * size : (i + 1) * size]
                chunks = split_physical(logical, config.physical_batch_size)
                batches = [train_enc.batch(chunk) for chunk in chunks]
                loss, examples = _step_with_cancel(engine, batches, should_cancel, step, plan)
                if scheduler is not None:
                    scheduler.step()
                step += 1
                if not math.isnan(loss):
                    last_loss = loss
                progress(
                    ProgressEvent(
                        step=step,
                        total_steps=total_steps,
                        epoch=epoch,
                        epochs=config.epochs,
                        loss=loss,
                        epsilon=_spent(engine, plan),
                        examples=examples,
                    )
                )
    finally:
        engine.close()

    model.eval()  # type: ignore[no-untyped-call]
    metrics = evaluate(model, eval_enc, label_names, batch_size=config.eval_batch_size)
    privacy = None
    if plan is not None:
        assert isinstance(engine, PrivateEngine)
        epsilon = accounting.compute_epsilon(
            noise_multiplier=plan.noise_multiplier,
            sample_rate=plan.sample_rate,
            steps=engine.steps,
            delta=plan.delta,
            accountant=plan.accountant,
        )
        tracked = engine.epsilon(plan.delta)
        if not math.isclose(tracked, epsilon, rel_tol=1e-9, abs_tol=1e-12):
            raise RuntimeError(f"accountant drift: tracked ε {tracked} != recomputed {epsilon}")
        privacy = PrivacyRecord(
            epsilon=epsilon,
            delta=plan.delta,
            noise_multiplier=plan.noise_multiplier,
            sample_rate=plan.sample_rate,
            steps=engine.steps,
            accountant=plan.accountant,
            max_grad_norm=config.max_grad_norm,
            target_epsilon=plan.target_epsilon,
            grad_sample_mode=config.grad_sample_mode,
            secure_mode=config.secure_mode,
        )
    label = PRIVATE_LABEL if config.private else NON_PRIVATE_LABEL
    return TrainingResult(
        private=config.private,
        privacy_label=label,
        privacy=privacy,
        metrics=metrics,
        strategy=applied,
        config=config,
        seed=config.seed,
        epochs=config.epochs,
        steps=engine.steps,
        label_names=tuple(label_names),
        base_model=config.base_model,
        base_model_sha256=loaded.spec.weights_sha256,
        pooling=loaded.spec.pooling,
        train_examples=n,
        eval_examples=len(eval_data.texts),
        final_loss=last_loss,
        duration_s=time.monotonic() - started,
        versions=library_versions(),
        weights=weights_to_bytes(
            model, weights_metadata(config, loaded.spec, label_names, privacy)
        ),
    )


def _spent(
    engine: PrivateEngine | NonPrivateEngine, plan: accounting.PrivacyPlan | None
) -> float | None:
    if plan is None:
        return None
    return engine.epsilon(plan.delta)


def _step_with_cancel(
    engine: PrivateEngine | NonPrivateEngine,
    batches: list[dict[str, torch.Tensor]],
    should_cancel: CancelCheck,
    step: int,
    plan: accounting.PrivacyPlan | None,
) -> tuple[float, int]:
    """Run one logical step, checking for cancellation before every physical batch.

    An abandoned logical step releases nothing (no parameter update), so it needs no
    accounting beyond the steps already taken.
    """

    def before_batch() -> None:
        if should_cancel():
            raise TrainingCancelled(steps=step, epsilon_spent=_spent(engine, plan))

    return engine.step(batches, before_batch=before_batch)
