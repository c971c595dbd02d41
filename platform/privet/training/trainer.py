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
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import opacus
import torch
import transformers
from safetensors.torch import save as save_safetensors

from privet.training import accounting
from privet.training.balance import class_weight_tensor, logit_adjustment_tensor
from privet.training.catalog import (
    POOLING_METADATA_KEY,
    BaseModelSpec,
    Catalog,
    LoadedBaseModel,
)
from privet.training.config import ConfigError as ConfigError
from privet.training.config import NonPrivateRefused as NonPrivateRefused
from privet.training.config import TrainingConfig as TrainingConfig
from privet.training.data import LabelledTexts, SoftTargets, encode
from privet.training.device import describe
from privet.training.evaluation import EvaluationResult, evaluate
from privet.training.guarantee import PrivacyRecord, privacy_record
from privet.training.noise import SecureRandom
from privet.training.privacy import (
    NonPrivateEngine,
    PrivateEngine,
)
from privet.training.progress import (
    CancelCheck,
    ProgressCallback,
    ignore_progress,
    never_cancel,
)
from privet.training.rows import rank_rows
from privet.training.selection import SelectionRecord
from privet.training.selection import build as build_selection
from privet.training.steps import StepLoop
from privet.training.strategies import (
    AppliedStrategy,
    Strategy,
    apply_strategy,
    is_head_parameter,
)
from privet.training.warmstart import WarmStart, load_initial, run_label_names
from privet.training.world import LOCAL, World

NON_PRIVATE_LABEL = "non-private (no differential privacy)"
PRIVATE_LABEL = "differentially private (DP-SGD)"


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
    device: str
    """Where the steps ran (`cpu`, `cuda:0 (NVIDIA ...)`; device.describe)."""
    precision: str
    """`fp32`, or `bf16` mixed precision (training/device.py)."""
    train_examples: int
    eval_examples: int
    final_loss: float
    duration_s: float
    versions: dict[str, str]
    weights: bytes = field(repr=False)
    selection: SelectionRecord | None = None
    """Model selection's per-epoch releases and the kept epoch (None: off)."""

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
        selection_share=config.selection_share,
        selection_releases=config.epochs if config.selection_share > 0 else 0,
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


@dataclass
class RankOutcome:
    """What one rank of a run returns: the head carries the result; every rank its counts."""

    rank: int
    steps: int
    noise_additions: int
    examples_seen: int
    train_s: float = 0.0
    """Seconds in the step loop (no model loading or evaluation): for throughput."""
    result: TrainingResult | None = None


def train(
    config: TrainingConfig,
    train_data: LabelledTexts,
    eval_data: LabelledTexts,
    *,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    catalog: Catalog | None = None,
    init: WarmStart | None = None,
    validation: LabelledTexts | None = None,
    world: World = LOCAL,
) -> TrainingResult:
    """Fine-tune `config.base_model` (or the classifier `init` holds: a warm start) on
    `train_data`, evaluate on `eval_data`, on `world.device` in `world.precision`; with
    `config.selection_share`, select the epoch on DP releases over `validation`
    (selection.py).

    Raises ConfigError/NonPrivateRefused before touching the data when the request is not
    allowed, TrainingCancelled when `should_cancel()` turns true (checked before every
    physical batch), and CatalogError when the base model fails its digest check.
    """
    n = len(train_data.texts)
    config.validate(n)
    outcome = train_part(
        config,
        train_data,
        eval_data,
        n=n,
        label_names=run_label_names(train_data, init),
        progress=progress,
        should_cancel=should_cancel,
        catalog=catalog,
        init=init,
        validation=validation,
        world=world,
    )
    assert outcome.result is not None
    return outcome.result


def train_part(
    config: TrainingConfig,
    part: LabelledTexts | None,
    eval_data: LabelledTexts | None,
    *,
    n: int,
    label_names: list[str],
    world: World = LOCAL,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    catalog: Catalog | None = None,
    init: WarmStart | None = None,
    validation: LabelledTexts | None = None,
    soft_targets: SoftTargets | None = None,
) -> RankOutcome:
    """Run `world.rank`'s part of `train(config, all n rows, eval_data)` (see world.py).

    `part` is this rank's rows (all of them in a world of one, else `shard(...)`; None
    when the shard is empty), `label_names` those of all n rows (a shard may miss one),
    `init` the weights to start from instead of the base model's (a warm start),
    `soft_targets` a teacher's label distributions over `part`'s rows (distillation).
    The head needs `eval_data` and gets the `TrainingResult` in its outcome. Raises
    TrainingCancelled on every rank when any rank's `should_cancel()` turned true.
    """
    started = time.monotonic()
    _validate(config, n, world)
    strategy = Strategy.parse(config.strategy)
    _seed_everything(config.seed)
    loaded = load_initial(config, label_names=label_names, init=init, catalog=catalog)
    model: torch.nn.Module = loaded.model
    model.to(world.device)
    applied = apply_strategy(model, strategy)
    # The replicas start equal: the seeded head already is; broadcasting makes it certain.
    world.broadcast_([*model.parameters(), *model.buffers()])
    encoded = rank_rows(
        config, part, loaded, labels=label_names, rank=world.rank, soft=soft_targets
    )
    temperature = 1.0 if soft_targets is None else soft_targets.temperature
    loop = _step_loop(config, model, n=n, world=world, label_names=label_names, t=temperature)
    selector, on_epoch_end, validation_rows = build_selection(
        config,
        loop.plan,
        model,
        validation,
        tokenizer=loaded.tokenizer,
        label_names=label_names,
        world=world,
        secure_rng=loop.secure_rng,
    )
    loop_started = time.monotonic()
    try:
        last_loss, seen = loop.run(
            encoded,
            local_n=0 if part is None else len(part.texts),
            progress=progress or ignore_progress,
            should_cancel=should_cancel or never_cancel,
            on_epoch_end=on_epoch_end,
        )
    finally:
        loop.engine.close()
    outcome = RankOutcome(
        rank=world.rank,
        steps=loop.engine.steps,
        noise_additions=loop.engine.noise_additions,
        examples_seen=seen,
        train_s=time.monotonic() - loop_started,
    )
    if world.is_head:
        if eval_data is None:
            raise ValueError("the head rank needs the evaluation data")
        # keep-best: the chosen epoch's weights back from memory, and what was selected
        selected = None if selector is None else selector.finish(model, config, validation_rows)
        result = _result(config, loop, loaded, applied, label_names, eval_data, last_loss, started)
        outcome.result = replace(result, selection=selected)
    return outcome


def _validate(config: TrainingConfig, n: int, world: World) -> None:
    """The config for n rows; bf16 keeps DP only where privet computes the per-sample
    norms (in fp32)."""
    config.validate(n)
    if world.precision == "bf16" and config.private and config.grad_sample_mode != "bk":
        raise ConfigError(
            f"bf16 mixed precision needs grad_sample_mode bk (privet's clipping computes "
            f"per-sample norms in fp32; Opacus's {config.grad_sample_mode} mode would compute "
            "them in bf16): use grad_sample_mode bk, or a worker with "
            "PRIVET_TRAINING_PRECISION=fp32"
        )


def _step_loop(
    config: TrainingConfig,
    model: torch.nn.Module,
    *,
    n: int,
    world: World,
    label_names: list[str],
    t: float = 1.0,
) -> StepLoop:
    """The engine, schedule and random sources `config` asks for, on this rank (`t`: the
    distillation temperature)."""
    optimizer = make_optimizer(config, model)
    weights = class_weight_tensor(config, label_names, world.device)
    offsets = logit_adjustment_tensor(config, label_names, world.device)
    secure_rng = SecureRandom() if config.secure_mode else None
    plan: accounting.PrivacyPlan | None = None
    engine: PrivateEngine | NonPrivateEngine
    if config.private:
        plan = privacy_plan(config, n)
        total_steps = plan.steps
        noise_gen = torch.Generator(device=world.device).manual_seed(config.seed * 2 + 2)
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
            world=world,
            class_weights=weights,
            logit_adjustment=offsets,
            label_smoothing=config.label_smoothing,
            copies=config.augment_multiplicity,
        )
    else:
        total_steps = math.ceil(n / min(config.logical_batch_size, n)) * config.epochs
        engine = NonPrivateEngine(
            model,
            optimizer,
            world=world,
            class_weights=weights,
            logit_adjustment=offsets,
            label_smoothing=config.label_smoothing,
            temperature=t,
            copies=config.augment_multiplicity,
        )
    scheduler = (
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: max(0.0, 1.0 - s / max(1, total_steps))
        )
        if config.lr_schedule == "linear"
        else None
    )
    return StepLoop(
        world=world,
        n=n,
        epochs=config.epochs,
        total_steps=total_steps,
        logical_batch_size=config.logical_batch_size,
        physical_batch_size=max(1, config.physical_batch_size // config.augment_multiplicity),
        engine=engine,
        plan=plan,
        scheduler=scheduler,
        sampling_gen=torch.Generator().manual_seed(config.seed * 2 + 1),
        secure_rng=secure_rng,
    )


def _result(
    config: TrainingConfig,
    loop: StepLoop,
    loaded: LoadedBaseModel,
    applied: AppliedStrategy,
    label_names: list[str],
    eval_data: LabelledTexts,
    last_loss: float,
    started: float,
) -> TrainingResult:
    """Evaluate the trained model (on the CPU) and gather what the head returns."""
    model: torch.nn.Module = loaded.model
    model.eval()
    model.to("cpu")
    eval_enc = encode(
        eval_data,
        loaded.tokenizer,
        label_names=label_names,
        max_length=config.max_length,
        model=model,
    )
    metrics = evaluate(model, eval_enc, label_names, batch_size=config.eval_batch_size)
    privacy = None
    if loop.plan is not None:
        assert isinstance(loop.engine, PrivateEngine)
        privacy = privacy_record(
            config, loop.plan, steps_run=loop.engine.steps, tracked=loop.engine.epsilon
        )
    return TrainingResult(
        private=config.private,
        privacy_label=PRIVATE_LABEL if config.private else NON_PRIVATE_LABEL,
        privacy=privacy,
        metrics=metrics,
        strategy=applied,
        config=config,
        seed=config.seed,
        epochs=config.epochs,
        steps=loop.engine.steps,
        label_names=tuple(label_names),
        base_model=config.base_model,
        base_model_sha256=loaded.spec.weights_sha256,
        pooling=loaded.spec.pooling,
        device=describe(loop.world.device),
        precision=loop.world.precision,
        train_examples=loop.n,
        eval_examples=len(eval_data.texts),
        final_loss=last_loss,
        duration_s=time.monotonic() - started,
        versions=library_versions(),
        weights=weights_to_bytes(
            model, weights_metadata(config, loaded.spec, label_names, privacy)
        ),
    )
