"""Benchmark (issue 22): the default `auto` DP recipe against a tuned non-private fine-tune.

For a data set, training size and ε: train MiniLM-L6 with the recipe privet chooses by
itself (`privet.training.recipe`, no per-data-set tuning) and a small non-private grid of
full fine-tunes (AdamW, batch 32, linear decay; epochs {3, 6} x lr {5e-5, 1e-4}: a team
training without DP would tune), on the same rows; print macro-F1 and the minority class's
F1 of both, and the gaps. Calibrate on sst2 and sms; confirm on trec and waimai.

    pytest tests/benchmarks/test_recipe_calibration.py -s -m shared_data
        (PRIVET_BENCH_SETS=sst2,sms  PRIVET_BENCH_ROWS=1000  PRIVET_BENCH_EPSILONS=3,8)

or one side at a time (each result is also appended as a JSON line to
PRIVET_BENCH_OUT, default /tmp/privet-recipe-calibration.jsonl):

    python tests/benchmarks/test_recipe_calibration.py dp sst2 1000 3
    python tests/benchmarks/test_recipe_calibration.py grid sst2 1000

PRIVET_BENCH_GRID=6:1e-4 runs only those cells of the grid; PRIVET_BENCH_CLASS_BALANCE=none,
on (class weights) or logit_adjust runs the recipe with that class balance instead of `auto`
(the calibration of `auto` on SMS; README).
PRIVET_BENCH_AUGMENT=K runs the DP side with augmentation multiplicity K (K copies of each
example, averaged before clipping; the recipe's rates; augment.py): ε is that of K = 1.
PRIVET_BENCH_THREADS sets torch's threads (2 on the shared 2-core machine; run with nice).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if not __package__:  # run as a script: the repository root, for `tests.benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

OUT = os.environ.get("PRIVET_BENCH_OUT", "/tmp/privet-recipe-calibration.jsonl")
GRID = tuple((epochs, lr) for epochs in (3, 6) for lr in (5e-5, 1e-4))
MAX_LENGTH = 64


def _summary(
    kind: str, name: str, rows: int, result: Any, counts: dict[str, int]
) -> dict[str, Any]:
    minority = min(counts, key=lambda k: (counts[k], k))
    per_class = {c.label: c.f1 for c in result.metrics.per_class}
    out = {
        "kind": kind,
        "set": name,
        "rows": rows,
        "macro_f1": round(result.metrics.macro_f1, 4),
        "accuracy": round(result.metrics.accuracy, 4),
        "minority": minority,
        "minority_f1": round(per_class.get(minority, 0.0), 4),
        "worst_class_f1": round(min(per_class.values()), 4),
        "epochs": result.epochs,
        "steps": result.steps,
        "strategy": result.strategy.strategy,
        "lr": result.config.learning_rate,
        "head_lr": result.config.head_learning_rate,
        "batch": result.config.logical_batch_size,
        "duration_s": round(result.duration_s),
    }
    if result.privacy is not None:
        p = result.privacy
        out |= {
            "epsilon": round(p.epsilon, 4),
            "target_epsilon": p.target_epsilon,
            "delta": p.delta,
            "sigma": round(p.noise_multiplier, 4),
            "q": round(p.sample_rate, 5),
            "C": p.max_grad_norm,
        }
    return out


def _record(row: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(row), flush=True)
    with open(OUT, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    return row


def _counts(labels: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return counts


def run_dp(name: str, rows: int, epsilon: float) -> dict[str, Any]:
    """The default recipe (`auto` for every field), as a job with no hyperparameters."""
    from privet.training.recipe import RecipeInputs, choose
    from privet.training.trainer import train
    from tests.benchmarks.calibration_data import load

    train_set, eval_set = load(name, rows)
    counts = _counts(train_set.labels)
    recipe = choose(
        RecipeInputs(
            n=len(train_set.texts),
            label_counts=counts,
            target_epsilon=epsilon,
            delta=None,
            base_model="minilm-l6",
            class_balance=os.environ.get("PRIVET_BENCH_CLASS_BALANCE", "auto"),
            overrides={"augment_multiplicity": int(os.environ.get("PRIVET_BENCH_AUGMENT", "1"))},
        )
    )
    for key, value in recipe.reasons().items():
        print(f"  recipe {key}: {value}", flush=True)
    started = time.monotonic()
    result = train(replace(recipe.config, max_length=MAX_LENGTH), train_set, eval_set)
    row = _summary("dp-auto", name, rows, result, counts)
    row["class_balance"] = recipe.inputs.class_balance
    row["class_weights"] = dict(recipe.config.class_weights or ())
    row["logit_adjustment"] = {k: round(v, 4) for k, v in recipe.config.logit_adjustment}
    row["augmentation"] = asdict(recipe.config.augmentation)
    row["wall_s"] = round(time.monotonic() - started)
    return _record(row)


def run_grid(name: str, rows: int) -> list[dict[str, Any]]:
    """The non-private full fine-tunes of the grid; each one recorded."""
    from privet.training.config import TrainingConfig
    from privet.training.trainer import train
    from tests.benchmarks.calibration_data import load

    train_set, eval_set = load(name, rows)
    counts = _counts(train_set.labels)
    out = []
    only = os.environ.get("PRIVET_BENCH_GRID")  # e.g. "6:1e-4": one cell of the grid
    cells = (
        [(int(e), float(r)) for e, r in (c.split(":") for c in only.split(","))] if only else GRID
    )
    for epochs, lr in cells:
        config = TrainingConfig(
            strategy="full",
            max_length=MAX_LENGTH,
            epochs=epochs,
            logical_batch_size=32,
            physical_batch_size=32,
            learning_rate=lr,
            optimizer="adamw",
            lr_schedule="linear",
            private=False,
            target_epsilon=None,
            contains_personal_data=False,
        )
        out.append(
            _record(_summary("non-private", name, rows, train(config, train_set, eval_set), counts))
        )
    return out


def _env_list(name: str, default: str) -> list[str]:
    return [v for v in os.environ.get(name, default).split(",") if v]


@pytest.mark.shared_data
def test_recipe_calibration() -> None:
    for name in _env_list("PRIVET_BENCH_SETS", "sst2,sms"):
        for rows in map(int, _env_list("PRIVET_BENCH_ROWS", "1000")):
            grid = run_grid(name, rows)
            best = max(grid, key=lambda r: r["macro_f1"])
            for epsilon in map(float, _env_list("PRIVET_BENCH_EPSILONS", "3,8")):
                dp = run_dp(name, rows, epsilon)
                assert dp["epsilon"] <= epsilon
                print(
                    f"{name} n={rows} eps={epsilon:g}: DP macro-F1 {dp['macro_f1']:.3f} "
                    f"(minority {dp['minority_f1']:.3f}) vs best non-private "
                    f"{best['macro_f1']:.3f} (minority {best['minority_f1']:.3f}): gap "
                    f"{100 * (best['macro_f1'] - dp['macro_f1']):.1f} points, minority gap "
                    f"{100 * (best['minority_f1'] - dp['minority_f1']):.1f}",
                    flush=True,
                )


def main(argv: Sequence[str]) -> None:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("PRIVET_BENCH_THREADS", "2")))
    what, name, rows = argv[0], argv[1], int(argv[2])
    if what == "dp":
        for epsilon in argv[3].split(","):
            run_dp(name, rows, float(epsilon))
    elif what == "grid":
        run_grid(name, rows)
    else:
        raise SystemExit(f"unknown command {what!r}: dp or grid")


if __name__ == "__main__":
    main(sys.argv[1:])
