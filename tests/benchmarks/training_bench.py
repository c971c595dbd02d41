"""Benchmark helpers for privet.training (MiniLM-L6, max length 64), run on demand only.

Figures are ratios against a baseline measured in the same run. Also a CLI:

    python tests/benchmarks/training_bench.py speed  [--strategies top-6,top-2] [--reps 5]
    python tests/benchmarks/training_bench.py memory [--strategies top-6]
    python tests/benchmarks/training_bench.py sst2   (PRIVET_BENCH_SST2_ROWS, ..._EVAL_ROWS)
    python tests/benchmarks/training_bench.py sms    (PRIVET_BENCH_SMS_ROWS)

Data comes from ../shared/data relative to the repository (override: PRIVET_SHARED_DATA).
PRIVET_BENCH_THREADS sets torch's intra-op threads for the CLI (e.g. 1 on a shared machine,
where idle OpenMP threads spinning inflate CPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if not __package__:  # run as a script: the repository root, for `tests.benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch

from privet.training.catalog import load_base_model, load_tokenizer
from privet.training.data import LabelledTexts, encode
from privet.training.privacy import NonPrivateEngine, PrivateEngine
from privet.training.strategies import Strategy, apply_strategy
from privet.training.trainer import TrainingConfig, TrainingResult, train
from tests.benchmarks.calibration_data import by_label, label_first_tsv, sms_spam_collection

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("PRIVET_SHARED_DATA", REPO.parent / "shared" / "data"))
MAX_LENGTH = 64
BATCH = 64


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# ---------------------------------------------------------------- data


def read_tsv_label_first(path: Path) -> LabelledTexts:
    """SST-2 style: header line, then `label<TAB>text`, LF or CRLF line ends."""
    return LabelledTexts(*label_first_tsv(path))


def sst2(train_rows: int, eval_rows: int | None = None) -> tuple[LabelledTexts, LabelledTexts]:
    """The first `train_rows` of a fixed-seed shuffle of train.tsv, and the dev set."""
    full = read_tsv_label_first(SHARED_DATA / "sst2" / "train.tsv")
    order = list(range(len(full.texts)))
    random.Random(0).shuffle(order)
    pick = order[:train_rows]
    train_set = LabelledTexts([full.texts[i] for i in pick], [full.labels[i] for i in pick])
    dev = read_tsv_label_first(SHARED_DATA / "sst2" / "dev.tsv")
    if eval_rows is not None and eval_rows < len(dev.texts):
        dev = LabelledTexts(list(dev.texts[:eval_rows]), list(dev.labels[:eval_rows]))
    return train_set, dev


def sms_spam(
    rows: int | None = None, test_fraction: float = 0.2, seed: int = 0
) -> tuple[LabelledTexts, LabelledTexts]:
    """Stratified fixed-seed train/test split of the SMS Spam Collection."""
    texts, labels = sms_spam_collection()
    rng = random.Random(seed)
    train_idx: list[int] = []
    test_idx: list[int] = []
    for idx in by_label(labels).values():
        rng.shuffle(idx)
        if rows is not None:  # keep the class ratio when subsampling
            idx = idx[: max(2, round(len(idx) * rows / len(labels)))]
        cut = round(len(idx) * test_fraction)
        test_idx += idx[:cut]
        train_idx += idx[cut:]
    rng.shuffle(train_idx)
    pick = lambda ids: LabelledTexts([texts[i] for i in ids], [labels[i] for i in ids])  # noqa: E731
    return pick(train_idx), pick(test_idx)


# ---------------------------------------------------------------- step time and memory


def _batch(n: int = BATCH) -> dict[str, torch.Tensor]:
    """`n` SST-2 sentences padded to the full max length (the worst case, and fixed)."""
    data, _ = sst2(n)
    tok = load_tokenizer()
    enc = encode(data, tok, label_names=["0", "1"], max_length=MAX_LENGTH)
    return {
        "input_ids": enc.input_ids,
        "attention_mask": enc.attention_mask,
        "token_type_ids": enc.token_type_ids,
        "position_ids": enc.position_ids,
        "labels": enc.labels,
    }


def wrap_engine(
    model: torch.nn.Module,
    mode: str,
    *,
    batch: int,
    sample_rate: float,
    generator: torch.Generator | None = None,
) -> PrivateEngine | NonPrivateEngine:
    """`model` under AdamW (lr 1e-4) in the engine of `mode`: "non-private", else DP with
    noise 1.0 and clip 1.0, `mode` naming the per-sample gradient mode (e.g. "bk")."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    if mode == "non-private":
        return NonPrivateEngine(model, opt)
    return PrivateEngine(
        model,
        opt,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        sample_rate=sample_rate,
        expected_batch_size=batch,
        grad_sample_mode=mode,
        generator=generator,
    )


def make_engine(mode: str, strategy: str) -> PrivateEngine | NonPrivateEngine:
    """A MiniLM-L6 classifier with `strategy` applied, wrapped for `mode`."""
    model = load_base_model(num_labels=2, seed=0).model
    apply_strategy(model, Strategy.parse(strategy))
    return wrap_engine(
        model,
        mode,
        batch=BATCH,
        sample_rate=BATCH / 8000,
        generator=torch.Generator().manual_seed(0),
    )


def interleaved_steps(
    engines: dict[str, Any],
    batch: dict[str, torch.Tensor],
    *,
    reps: int,
    warmup: int,
    sync: Callable[[], None] = lambda: None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall, CPU) seconds of each engine's optimizer step on `batch`, the engines taking
    turns so a busy moment of the machine falls on all alike; the first `warmup` rounds
    are not kept, and the engines are closed after. `sync` waits for the device."""
    wall: dict[str, list[float]] = {m: [] for m in engines}
    cpu: dict[str, list[float]] = {m: [] for m in engines}
    for rep in range(warmup + reps):
        for mode, engine in engines.items():
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            engine.step([batch])
            sync()
            if rep >= warmup:
                wall[mode].append(time.perf_counter() - start)
                cpu[mode].append(time.process_time() - start_cpu)
    for engine in engines.values():
        close = getattr(engine, "close", None)
        if close is not None:
            close()
    return wall, cpu


def step_times(
    strategy: str, modes: Sequence[str], *, reps: int = 5, warmup: int = 2
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per optimizer step (batch 64, length 64), interleaved.

    CPU time (all threads of this process) is reported too: on a shared machine it is
    less disturbed by other processes than wall time.
    """
    batch = _batch()
    engines = {m: make_engine(m, strategy) for m in modes}
    wall, cpu = interleaved_steps(engines, batch, reps=reps, warmup=warmup)
    return {m: (statistics.median(wall[m]), statistics.median(cpu[m])) for m in modes}


def speed_report(strategies: Sequence[str], modes: Sequence[str], reps: int) -> list[str]:
    lines = []
    for strategy in strategies:
        t = step_times(strategy, ["non-private", *modes], reps=reps)
        bw, bc = t["non-private"]
        parts = [f"non-private wall {bw:.2f}s cpu {bc:.2f}s"] + [
            f"{m} wall {t[m][0]:.2f}s ({t[m][0] / bw:.2f}x) cpu {t[m][1]:.2f}s "
            f"({t[m][1] / bc:.2f}x)"
            for m in modes
        ]
        lines.append(
            f"step time, strategy {strategy} in both runs, batch 64, len 64: " + "; ".join(parts)
        )
        print(lines[-1], flush=True)
    return lines


def peak_rss_child(mode: str, strategy: str, steps: int = 3) -> None:
    """Run in a fresh process: a few steps, then print whole-process peak RSS (MB)."""
    batch = _batch()
    engine = make_engine(mode, strategy)
    for _ in range(steps):
        engine.step([batch])
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "strategy": strategy, "peak_rss_mb": peak_kb / 1024}))


def peak_rss(mode: str, strategy: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "memory-child", "--mode", mode, "--strategies", strategy],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_rss_mb"])


def memory_report(strategies: Sequence[str], modes: Sequence[str]) -> list[str]:
    lines = []
    for strategy in strategies:
        base = peak_rss("non-private", strategy)
        parts = [f"non-private {base:.0f} MB"]
        for mode in modes:
            mb = peak_rss(mode, strategy)
            parts.append(f"{mode} {mb:.0f} MB ({mb / base:.2f}x)")
        lines.append(
            f"peak RSS, strategy {strategy} in both, batch 64, len 64: " + "; ".join(parts)
        )
        print(lines[-1], flush=True)
    return lines


# ---------------------------------------------------------------- utility (accuracy)


def _log_progress(tag: str) -> Callable[[Any], None]:
    start = time.monotonic()

    def show(ev: Any) -> None:
        if ev.step == ev.total_steps or ev.step % max(1, ev.total_steps // 10) == 0:
            eps = "-" if ev.epsilon is None else f"{ev.epsilon:.2f}"
            print(
                f"  [{tag}] step {ev.step}/{ev.total_steps} epoch {ev.epoch} "
                f"loss {ev.loss:.3f} eps {eps} {time.monotonic() - start:.0f}s",
                flush=True,
            )

    return show


def compare(
    name: str,
    train_set: LabelledTexts,
    eval_set: LabelledTexts,
    dp: TrainingConfig,
    non_private: TrainingConfig,
) -> tuple[TrainingResult, TrainingResult]:
    """Train DP and non-private on the same rows with the same number of example passes."""
    assert dp.epochs == non_private.epochs, "same number of example passes"
    only = os.environ.get("PRIVET_BENCH_ONLY", "")  # "dp" or "non-private": one side only
    runs = []
    if only != "dp":
        res_np = train(
            non_private, train_set, eval_set, progress=_log_progress(f"{name} non-private")
        )
        runs.append(("non-private", res_np))
    if only != "non-private":
        res_dp = train(dp, train_set, eval_set, progress=_log_progress(f"{name} DP"))
        runs.append(("DP", res_dp))
    for label, res in runs:
        eps = (
            ""
            if res.privacy is None
            else (
                f" eps={res.privacy.epsilon:.3f} delta={res.privacy.delta:.2e} "
                f"sigma={res.privacy.noise_multiplier:.3f} q={res.privacy.sample_rate:.4f} "
                f"steps={res.privacy.steps} C={res.privacy.max_grad_norm}"
            )
        )
        print(
            f"{name} {label}: n={res.train_examples} eval={res.eval_examples} "
            f"strategy={res.strategy.strategy} epochs={res.epochs} "
            f"acc={res.metrics.accuracy:.4f} macroF1={res.metrics.macro_f1:.4f} "
            f"time={res.duration_s:.0f}s{eps}",
            flush=True,
        )
    by_label = dict(runs)
    return by_label.get("DP", runs[0][1]), by_label.get("non-private", runs[-1][1])


DP_RECIPE = TrainingConfig(
    strategy=os.environ.get("PRIVET_BENCH_STRATEGY", "bitfit"),
    max_length=MAX_LENGTH,
    epochs=_env_int("PRIVET_BENCH_EPOCHS", 6),
    logical_batch_size=_env_int("PRIVET_BENCH_LOGICAL_BATCH", 512),
    physical_batch_size=BATCH,
    learning_rate=float(os.environ.get("PRIVET_BENCH_DP_LR", "0.3")),
    head_learning_rate=float(os.environ.get("PRIVET_BENCH_DP_HEAD_LR", "1.0")),
    optimizer=os.environ.get("PRIVET_BENCH_OPTIMIZER", "sgd"),
    target_epsilon=8.0,
    max_grad_norm=float(os.environ.get("PRIVET_BENCH_CLIP", "1.0")),
    lr_schedule="linear",
)
"""The DP side (the jobs API's default recipe). MiniLM-L6 is mean-pooled (catalog), so
`bitfit` trains 31,490 parameters; momentum SGD, not AdamW, under DP noise."""

NON_PRIVATE_RECIPE = replace(
    DP_RECIPE,
    private=False,
    contains_personal_data=False,
    strategy=os.environ.get("PRIVET_BENCH_NP_STRATEGY", DP_RECIPE.strategy),
    logical_batch_size=_env_int("PRIVET_BENCH_NP_LOGICAL_BATCH", DP_RECIPE.logical_batch_size),
    learning_rate=float(os.environ.get("PRIVET_BENCH_NP_LR", "2e-3")),
    head_learning_rate=float(os.environ.get("PRIVET_BENCH_NP_HEAD_LR", "3e-2")),
    optimizer="adamw",
    target_epsilon=None,
)
"""The baseline: the same strategy, rows and example passes without DP, with the learning
rates that suit non-private training (each side tuned for itself). A full fine-tune is one
env var away: PRIVET_BENCH_NP_STRATEGY=full PRIVET_BENCH_NP_LR=5e-5
PRIVET_BENCH_NP_LOGICAL_BATCH=32 PRIVET_BENCH_NP_HEAD_LR=5e-5."""

SMS_LOGICAL_BATCH = _env_int("PRIVET_BENCH_SMS_LOGICAL_BATCH", 256)
"""SMS has 4,459 training rows: a smaller logical batch keeps ~100 steps in 6 epochs."""


def run_sst2() -> tuple[TrainingResult, TrainingResult]:
    train_set, dev = sst2(
        _env_int("PRIVET_BENCH_SST2_ROWS", 8000),
        _env_int("PRIVET_BENCH_SST2_EVAL_ROWS", 0) or None,
    )
    return compare("SST-2", train_set, dev, DP_RECIPE, NON_PRIVATE_RECIPE)


def run_sms() -> tuple[TrainingResult, TrainingResult]:
    rows = _env_int("PRIVET_BENCH_SMS_ROWS", 0) or None
    train_set, test = sms_spam(rows)
    dp = replace(DP_RECIPE, logical_batch_size=SMS_LOGICAL_BATCH)
    non_private = replace(NON_PRIVATE_RECIPE, logical_batch_size=SMS_LOGICAL_BATCH)
    return compare("SMS", train_set, test, dp, non_private)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["speed", "memory", "memory-child", "sst2", "sms"])
    parser.add_argument("--strategies", default="top-6,top-2")
    parser.add_argument("--modes", default="ghost")
    parser.add_argument("--mode", default="ghost")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    strategies = args.strategies.split(",")
    modes = args.modes.split(",")
    torch.manual_seed(0)
    if os.environ.get("PRIVET_BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["PRIVET_BENCH_THREADS"]))
    if args.what == "speed":
        speed_report(strategies, modes, args.reps)
    elif args.what == "memory":
        memory_report(strategies, modes)
    elif args.what == "memory-child":
        peak_rss_child(args.mode, strategies[0])
    elif args.what == "sst2":
        run_sst2()
    else:
        run_sms()


if __name__ == "__main__":
    main()
