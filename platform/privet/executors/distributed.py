"""Data-parallel DP-SGD: one rank of an N-process training run (torch.distributed).

The run is the single-process run of `privet.training.train`, split across N ranks:

- **Data**: the training rows are sharded by index (row i lives on rank i mod N), so a
  rank holds 1/N of the data. Each step every rank keeps the part of one *global* Poisson
  sample (rate q = logical batch / n over all n rows) that falls in its shard. With
  seeded sampling every rank draws the same n uniforms, so the global sample is exactly
  the one a single process draws; with `secure_mode` each rank draws its own shard's
  Bernoullis from a CSPRNG, which is the same distribution (independent inclusion of
  every row with probability q). The logical batch is thus split across ranks and the
  sample rate — what the accountant needs — is the global q.
- **Clipping**: per-sample clipping is local (it needs no communication); each rank sums
  its clipped per-sample gradients over its physical batches (Opacus's skip-step
  accumulation, as in the single-process engine).
- **Noise once per step**: only rank 0 adds N(0, sigma²C²) noise (Opacus's DPDDP protocol,
  `DistributedDPOptimizer`); the other ranks contribute their clipped sums unchanged; one
  all-reduce (sum) then gives every rank Σ clipped + one noise draw, which is divided by
  the *global* expected batch size — the single-process estimator, bit for bit up to the
  order of floating-point sums. Every rank then takes the same optimizer step, so the
  replicas never diverge (they start from the same weights, broadcast from rank 0).
- **Accounting**: sigma, q, steps and δ are the single-process plan for the same global
  batch, sample rate and steps (`privacy_plan(config, n)`), and the ε reported is
  `compute_epsilon` on them.
- **Cancellation** is agreed collectively before every logical step (an all-reduce of
  the ranks' flags), so all ranks stop at the same step and none waits forever.

Only rank 0 evaluates and returns the weights; nothing is written to disk here.
"""

from __future__ import annotations

import math
import random
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

from privet.training import accounting
from privet.training.catalog import Catalog, load_base_model
from privet.training.data import LabelledTexts, encode
from privet.training.evaluation import evaluate
from privet.training.noise import SecureRandom
from privet.training.privacy import NonPrivateEngine, PrivateEngine, split_physical
from privet.training.progress import (
    ProgressEvent,
    TrainingCancelled,
    ignore_progress,
    never_cancel,
)
from privet.training.strategies import Strategy, apply_strategy
from privet.training.trainer import (
    NON_PRIVATE_LABEL,
    PRIVATE_LABEL,
    PrivacyRecord,
    TrainingConfig,
    TrainingResult,
    library_versions,
    make_optimizer,
    privacy_plan,
    weights_metadata,
    weights_to_bytes,
)


@dataclass(frozen=True)
class RankInfo:
    rank: int
    world_size: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass
class RankOutcome:
    """What one rank returns: rank 0 carries the result; every rank its noise count."""

    rank: int
    steps: int
    noise_additions: int
    examples_seen: int
    train_s: float = 0.0
    """Seconds in the step loop (no model loading or evaluation): for throughput."""
    result: TrainingResult | None = None


def shard(data: LabelledTexts, rank: int, world_size: int) -> LabelledTexts | None:
    """Rows rank, rank+N, rank+2N, ... (None when the shard is empty)."""
    texts = list(data.texts)[rank::world_size]
    if not texts:
        return None
    return LabelledTexts(texts, list(data.labels)[rank::world_size])


def _distributed(info: RankInfo) -> bool:
    return info.world_size > 1 and dist.is_available() and dist.is_initialized()


def _all_reduce_(tensors: list[torch.Tensor], info: RankInfo, op: Any = None) -> None:
    """In-place all-reduce (sum by default) of several tensors as one flat buffer."""
    if not _distributed(info) or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat, op=op if op is not None else dist.ReduceOp.SUM)
    offset = 0
    for t in tensors:
        size = t.numel()
        t.copy_(flat[offset : offset + size].view_as(t))
        offset += size


def make_data_parallel(engine: PrivateEngine, info: RankInfo) -> None:
    """Turn a single-process engine into one rank of a DPDDP run (see the module doc).

    Rank 0 keeps the engine's noise (seeded or CSPRNG); the other ranks add none. Before
    scaling, the noised sum of rank 0 and the clipped sums of the others are all-reduced,
    then divided by the global expected batch size the engine was built with.
    """
    opt: Any = engine.optimizer
    noisy_add_noise = opt.add_noise  # bound: Opacus's or the CSPRNG override
    single_scale_grad = opt.scale_grad
    opt._privet_noise_additions = 0

    def add_noise(self: Any) -> None:
        if info.rank == 0:
            noisy_add_noise()
            self._privet_noise_additions += 1
            return
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            p.grad = p.summed_grad.view_as(p).clone()
            _mark_as_processed(p.summed_grad)

    def scale_grad(self: Any) -> None:
        _all_reduce_([p.grad for p in self.params], info)
        single_scale_grad()

    opt.add_noise = types.MethodType(add_noise, opt)
    opt.scale_grad = types.MethodType(scale_grad, opt)


class DataParallelNonPrivateEngine(NonPrivateEngine):
    """Plain SGD across ranks (only for data declared free of personal data)."""

    def __init__(self, model: torch.nn.Module, optimizer: Any, info: RankInfo) -> None:
        super().__init__(model, optimizer)
        self.info = info

    def step(
        self, physical_batches: Any, before_batch: Callable[[], None] | None = None
    ) -> tuple[float, int]:
        batches = [b for b in physical_batches if len(b["labels"]) > 0]
        local = sum(len(b["labels"]) for b in batches)
        count = torch.tensor([float(local)])
        _all_reduce_([count], self.info)
        total = int(count.item())
        if not total:
            return float("nan"), 0
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for batch in batches:
            if before_batch is not None:
                before_batch()
            logits = self.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            loss = self.criterion(logits, batch["labels"])
            (loss / total).backward()
            loss_sum += float(loss.item())
        params = [p for p in self.model.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        _all_reduce_([p.grad for p in params], self.info)  # type: ignore[misc]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return loss_sum / max(1, local), local


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def train_rank(
    config: TrainingConfig,
    train_shard: LabelledTexts | None,
    eval_data: LabelledTexts | None,
    *,
    n: int,
    label_names: list[str],
    info: RankInfo,
    catalog: Catalog | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RankOutcome:
    """Run this rank's part of `train(config, full train data, eval_data)`.

    `n` is the global number of training rows, `train_shard` this rank's rows
    (`shard(data, rank, N)`), `label_names` the labels of the full training data (the
    driver computes them: a shard may miss a label). Rank 0 needs `eval_data` and gets the
    `TrainingResult` (with the weights as bytes) in its outcome. Raises
    `TrainingCancelled` on every rank when any rank's `should_cancel()` turned true.
    """
    started = time.monotonic()
    progress = progress or ignore_progress
    should_cancel = should_cancel or never_cancel
    rank, world = info.rank, info.world_size
    config.validate(n)
    strategy = Strategy.parse(config.strategy)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    loaded = load_base_model(
        config.base_model, num_labels=len(label_names), seed=config.seed, catalog=catalog
    )
    model: Any = loaded.model
    model.to(info.device)
    applied = apply_strategy(model, strategy)
    # The replicas start equal: the seeded head already is; broadcasting makes it certain.
    if _distributed(info):
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)
    local_n = 0 if train_shard is None else len(train_shard.texts)
    train_enc = (
        None
        if train_shard is None
        else encode(
            train_shard, loaded.tokenizer, label_names=label_names, max_length=config.max_length
        )
    )

    optimizer = make_optimizer(config, model)
    sampling_gen = torch.Generator().manual_seed(config.seed * 2 + 1)
    noise_gen = torch.Generator(device=info.device).manual_seed(config.seed * 2 + 2)
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
            generator=None if (secure_rng or rank != 0) else noise_gen,
            secure_rng=secure_rng if rank == 0 else None,
        )
        make_data_parallel(engine, info)
        steps_per_epoch = total_steps // config.epochs
    else:
        batch_size = min(config.logical_batch_size, n)
        steps_per_epoch = math.ceil(n / batch_size)
        total_steps = steps_per_epoch * config.epochs
        engine = DataParallelNonPrivateEngine(model, optimizer, info)

    scheduler = (
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: max(0.0, 1.0 - s / max(1, total_steps))
        )
        if config.lr_schedule == "linear"
        else None
    )

    def spent() -> float | None:
        return None if plan is None else engine.epsilon(plan.delta)

    def local_part(global_idx: torch.Tensor) -> torch.Tensor:
        mine = global_idx[global_idx % world == rank]
        return torch.div(mine, world, rounding_mode="floor")

    last_loss = float("nan")
    examples_seen = 0
    step = 0
    loop_started = time.monotonic()
    try:
        for epoch in range(1, config.epochs + 1):
            order = None if config.private else torch.randperm(n, generator=sampling_gen)
            for i in range(steps_per_epoch):
                flag = torch.tensor([1.0 if should_cancel() else 0.0])
                _all_reduce_([flag], info, op=dist.ReduceOp.MAX if _distributed(info) else None)
                if flag.item() > 0:
                    raise TrainingCancelled(steps=step, epsilon_spent=spent())
                if config.private:
                    assert plan is not None
                    if secure_rng is not None:
                        draws = secure_rng.uniform(local_n) if local_n else torch.zeros(0)
                        logical = torch.nonzero(draws < plan.sample_rate).flatten()
                    else:
                        draws = torch.rand(n, generator=sampling_gen, dtype=torch.float64)
                        logical = local_part(torch.nonzero(draws < plan.sample_rate).flatten())
                else:
                    assert order is not None
                    size = min(config.logical_batch_size, n)
                    logical = local_part(order[i * size : (i + 1) * size])
                chunks = split_physical(logical, config.physical_batch_size)
                assert train_enc is not None or not chunks
                batches = [_to(train_enc.batch(c), info.device) for c in chunks]  # type: ignore[union-attr]
                loss, examples = engine.step(batches)
                if scheduler is not None:
                    scheduler.step()
                step += 1
                # Global mean loss and batch size for progress (one tiny all-reduce).
                stats = torch.tensor(
                    [0.0 if math.isnan(loss) else loss * examples, float(examples)],
                    dtype=torch.float64,
                )
                _all_reduce_([stats], info)
                global_examples = int(stats[1].item())
                examples_seen += examples
                mean_loss = (
                    float(stats[0].item()) / global_examples if global_examples else float("nan")
                )
                if not math.isnan(mean_loss):
                    last_loss = mean_loss
                if rank == 0:
                    progress(
                        ProgressEvent(
                            step=step,
                            total_steps=total_steps,
                            epoch=epoch,
                            epochs=config.epochs,
                            loss=mean_loss,
                            epsilon=spent(),
                            examples=global_examples,
                        )
                    )
    finally:
        engine.close()
    train_s = time.monotonic() - loop_started

    noise_additions = int(getattr(engine.optimizer, "_privet_noise_additions", 0))
    outcome = RankOutcome(
        rank=rank,
        steps=engine.steps,
        noise_additions=noise_additions,
        examples_seen=examples_seen,
        train_s=train_s,
    )
    if rank != 0:
        return outcome
    if eval_data is None:
        raise ValueError("rank 0 needs the evaluation data")
    model.eval()
    model_cpu = model.to("cpu")
    eval_enc = encode(
        eval_data, loaded.tokenizer, label_names=label_names, max_length=config.max_length
    )
    metrics = evaluate(model_cpu, eval_enc, label_names, batch_size=config.eval_batch_size)
    privacy = None
    if plan is not None:
        epsilon = accounting.compute_epsilon(
            noise_multiplier=plan.noise_multiplier,
            sample_rate=plan.sample_rate,
            steps=engine.steps,
            delta=plan.delta,
            accountant=plan.accountant,
        )
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
    outcome.result = TrainingResult(
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
            model_cpu, weights_metadata(config, loaded.spec, label_names, privacy)
        ),
    )
    return outcome
