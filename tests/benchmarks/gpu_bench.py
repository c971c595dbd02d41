"""GPU benchmark, unattended in a few minutes (issue 21): DP and non-private training step
and epoch time, and serving throughput on the GPU against the CPU.

    python tests/benchmarks/gpu_bench.py                 # on a GPU machine (cuda)
    python tests/benchmarks/gpu_bench.py --tiny --device cpu   # check the script anywhere

For MiniLM-L6 (the shipped base model) and a BERT-base-shaped model (12 x 768, random
weights: timing only), at length 128 and physical batch ``--batch`` (random tokens; the
epoch is SST-2's 67,349 training rows):

- median step time, non-private and DP (privet's PrivateEngine, book-keeping clipping
  ``bk``, noise 1.0, clip 1.0), interleaved in the same run; the ratio DP / non-private
  (target <= 1.2 with book-keeping clipping on the GPU); the epoch time as
  ceil(67,349 / batch) x the median step (extrapolated from ``--steps`` measured steps);
- serving: predictions/s of eval-mode forward passes (batches of 64 x 128,
  torch.inference_mode) on ``--device`` and on the CPU, and their ratio.

Prints a table and writes JSON to ``--out`` (default gpu_bench.json). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch

SST2_TRAIN_ROWS = 67_349
LENGTH = 128


def _model(kind: str, tiny: bool) -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    if tiny:
        cfg = BertConfig(
            vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=LENGTH, num_labels=2,
        )  # fmt: skip
        return BertForSequenceClassification(cfg)
    if kind == "minilm-l6":
        from privet.training.catalog import load_base_model

        return load_base_model(num_labels=2, seed=0).model  # type: ignore[no-any-return]
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(num_labels=2))  # bert-base shape


def _batch(model: torch.nn.Module, n: int) -> dict[str, torch.Tensor]:
    """``n`` rows of random tokens, all ``LENGTH`` long (on the CPU)."""
    vocab = int(model.config.vocab_size)  # type: ignore[union-attr]
    g = torch.Generator().manual_seed(n)
    return {
        "input_ids": torch.randint(1000 if vocab > 1000 else 1, vocab, (n, LENGTH), generator=g),
        "attention_mask": torch.ones(n, LENGTH, dtype=torch.long),
        "token_type_ids": torch.zeros(n, LENGTH, dtype=torch.long),
        "labels": torch.randint(0, 2, (n,), generator=g),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _engine(kind: str, mode: str, batch: int, device: torch.device, tiny: bool) -> Any:
    """Non-private, or DP with book-keeping clipping ("dp-bk")."""
    from tests.benchmarks.training_bench import wrap_engine

    model = _model(kind, tiny).to(device)
    return wrap_engine(
        model,
        "non-private" if mode == "non-private" else "bk",
        batch=batch,
        sample_rate=batch / SST2_TRAIN_ROWS,
    )


def training(kind: str, *, batch: int, steps: int, device: torch.device, tiny: bool) -> dict:
    """Median step seconds of each mode (interleaved), the ratio, and epoch seconds."""
    from tests.benchmarks.training_bench import interleaved_steps

    modes = ("non-private", "dp-bk")
    engines = {m: _engine(kind, m, batch, device, tiny) for m in modes}
    data = {k: v.to(device) for k, v in _batch(engines["non-private"].model, batch).items()}
    times, _ = interleaved_steps(engines, data, reps=steps, warmup=2, sync=lambda: _sync(device))
    step = {m: statistics.median(t) for m, t in times.items()}
    per_epoch = math.ceil(SST2_TRAIN_ROWS / batch)
    out = {
        "model": kind,
        "batch": batch,
        "length": LENGTH,
        "steps_measured": steps,
        "step_s_non_private": step["non-private"],
        "step_s_dp": step["dp-bk"],
        "dp_over_non_private": step["dp-bk"] / step["non-private"],
        "epoch_s_non_private": per_epoch * step["non-private"],
        "epoch_s_dp": per_epoch * step["dp-bk"],
    }
    del engines
    if device.type == "cuda":
        out["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    return out


def serving(kind: str, *, device: torch.device, batches: int, tiny: bool) -> dict:
    """Predictions/s of eval forward passes (64 x 128) on ``device`` and on the CPU."""
    rates = {}
    for where in dict.fromkeys([device, torch.device("cpu")]):
        model = _model(kind, tiny).eval().to(where)
        data = _batch(model, 64)
        inputs = {k: v.to(where) for k, v in data.items() if k != "labels"}
        n = batches if where.type == "cuda" else max(1, batches // 8)
        with torch.inference_mode():
            model(**inputs)  # warm-up
            _sync(where)
            started = time.perf_counter()
            for _ in range(n):
                torch.softmax(model(**inputs).logits.float(), dim=-1).cpu()
            _sync(where)
            rates[str(where)] = n * 64 / (time.perf_counter() - started)
        del model
    cpu = rates["cpu"]
    dev = rates[str(device)]
    return {"model": kind, "device": str(device), "per_s_device": dev, "per_s_cpu": cpu,
            "device_over_cpu": dev / cpu}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--serve-batches", type=int, default=40)
    parser.add_argument("--models", default="minilm-l6,bert-base")
    parser.add_argument("--tiny", action="store_true", help="tiny random BERTs: a quick check")
    parser.add_argument("--out", default="gpu_bench.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    env = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "tiny": args.tiny,
    }
    results: dict[str, Any] = {"env": env, "training": [], "serving": []}
    print(json.dumps(env), flush=True)
    for kind in args.models.split(","):
        t = training(kind, batch=args.batch, steps=args.steps, device=device, tiny=args.tiny)
        results["training"].append(t)
        print(
            f"{kind:<10} step non-private {t['step_s_non_private'] * 1000:8.1f} ms, DP "
            f"{t['step_s_dp'] * 1000:8.1f} ms, DP/non-private {t['dp_over_non_private']:.2f}; "
            f"epoch (SST-2 {SST2_TRAIN_ROWS} rows) non-private {t['epoch_s_non_private']:.0f} s, "
            f"DP {t['epoch_s_dp']:.0f} s",
            flush=True,
        )
        s = serving(kind, device=device, batches=args.serve_batches, tiny=args.tiny)
        results["serving"].append(s)
        print(
            f"{kind:<10} serving {s['per_s_device']:.0f}/s on {device}, {s['per_s_cpu']:.0f}/s "
            f"on cpu, ratio {s['device_over_cpu']:.1f}",
            flush=True,
        )
    Path(args.out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
