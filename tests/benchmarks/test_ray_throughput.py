"""Benchmark: DP-SGD training throughput, 2 workers vs 1, same global batch (on demand).

    pytest tests/benchmarks/test_ray_throughput.py -s
    (PRIVET_BENCH_RAY_MODEL=minilm-l6|tiny  PRIVET_BENCH_RAY_CPUS=2  PRIVET_BENCH_RAY_STEPS=8
     PRIVET_BENCH_RAY_BATCH=64  PRIVET_BENCH_RAY_LENGTH=64  PRIVET_BENCH_RAY_GPU=0|1)

Starts its own Ray instance with PRIVET_BENCH_RAY_CPUS CPUs (default 2), then trains the
same DP job (same data, seed, global logical batch, sample rate and steps) three ways:
1 worker with all the CPUs, 2 workers with half each, and 1 worker with half the CPUs (the
per-core baseline). Throughput is Poisson-sampled examples per second of the step loop
(rank 0's clock; model loading and evaluation excluded), printed as ratios against the
1-worker run of the same process. On a 2-core machine the 2-worker run cannot beat the
1-worker run: both use the same two cores, and the 2 workers also pay for the all-reduce
and for two copies of the model; what it shows is the overhead of data parallelism.
With PRIVET_BENCH_RAY_GPU=1 every worker gets a share of the one GPU (gloo over CUDA
tensors when the workers share a GPU). No timed assertion.

`test_ranks_without_ray` measures the same ranks (privet.executors.distributed) launched
by torch.multiprocessing instead of Ray, on the devices in PRIVET_BENCH_DP_DEVICES
(default `cpu`; `cpu,cuda` on a GPU machine) with PRIVET_BENCH_DP_THREADS threads for
the 1-worker run (half each for 2 workers), on a MiniLM-shaped BERT built in code
(6 layers, hidden 384, random weights, small vocabulary) when PRIVET_BENCH_RAY_MODEL is
`minilm-shaped` (its default), for machines without Ray or the MiniLM package:

    PRIVET_BENCH_DP_DEVICES=cpu,cuda PRIVET_BENCH_DP_THREADS=8 \
        pytest tests/benchmarks/test_ray_throughput.py -s -k without_ray
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

WORDS = "loan income rent employer balance late payment claim policy repair".split()


def _data(n: int, words: list[str], seed: int = 0) -> Any:
    from privet.training.data import LabelledTexts

    rng = random.Random(seed)
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(20, 60))) for _ in range(n)]
    return LabelledTexts(texts, [str(i % 2) for i in range(n)])


def _config(model: str, batch: int, length: int) -> Any:
    from privet.training import TrainingConfig

    return TrainingConfig(
        base_model=model,
        strategy="top-2",
        max_length=length,
        epochs=1,
        logical_batch_size=batch,
        physical_batch_size=32,
        target_epsilon=8.0,
        seed=0,
    )


def test_ray_two_workers_vs_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ray = pytest.importorskip("ray")
    from privet.executors.base import JobSpec
    from privet.executors.ray_executor import RayExecutor
    from privet.executors.settings import ExecutorSettings
    from privet.training.catalog import CATALOG, build_tiny_bert

    cpus = int(os.environ.get("PRIVET_BENCH_RAY_CPUS", "2"))
    steps = int(os.environ.get("PRIVET_BENCH_RAY_STEPS", "8"))
    batch = int(os.environ.get("PRIVET_BENCH_RAY_BATCH", "64"))
    length = int(os.environ.get("PRIVET_BENCH_RAY_LENGTH", "64"))
    gpu = os.environ.get("PRIVET_BENCH_RAY_GPU", "0") == "1"
    model = os.environ.get("PRIVET_BENCH_RAY_MODEL", "minilm-l6")
    words = WORDS
    if model == "tiny":
        spec = build_tiny_bert(
            tmp_path / "tiny", name="tiny-bench", words=words, hidden_size=64, num_layers=2
        )
        CATALOG.register(spec, replace=True)
        model = spec.name
    n = batch * steps  # one epoch of `steps` steps at the global batch
    data, held_out = _data(n, words), _data(64, words, seed=1)
    config = _config(model, batch, length)
    if not ray.is_initialized():
        ray.init(
            num_cpus=cpus,
            num_gpus=1 if gpu else 0,
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        runs = []
        for workers, cpus_each in ((1, cpus), (2, cpus / 2), (1, cpus / 2)):
            settings = ExecutorSettings(
                executor="ray",
                ray_cpus_per_worker=cpus_each,
                ray_gpus_per_worker=(1.0 / workers) if gpu else 0.0,
                ray_backend="gloo" if gpu and workers > 1 else None,
            )
            run = RayExecutor(settings).run(
                JobSpec(f"bench-{workers}-{cpus_each}", "bench", workers=workers),
                config,
                data,
                held_out,
            )
            head = run.ranks[0]
            examples = sum(r.examples_seen for r in run.ranks)
            runs.append((workers, cpus_each, examples / head.train_s, head.train_s, examples))
    finally:
        ray.shutdown()
    base = runs[0][2]
    device = "GPU" if gpu else "CPU"
    print(
        f"\nRay DP-SGD throughput, {model}, {device}, global batch {batch}, length {length}, "
        f"{steps} steps, Ray CPUs {cpus} (machine: {os.cpu_count()} cores)"
    )
    for workers, cpus_each, rate, seconds, examples in runs:
        print(
            f"  {workers} worker(s) x {cpus_each:g} CPU: {rate:8.1f} examples/s "
            f"({examples} examples in {seconds:.1f} s) = {rate / base:.2f}x the 1-worker run"
        )
    assert all(r[4] > 0 for r in runs)


def test_ranks_without_ray(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from privet.executors.distributed import run_local_ranks
    from privet.training.catalog import CATALOG, build_tiny_bert

    devices = os.environ.get("PRIVET_BENCH_DP_DEVICES", "cpu").split(",")
    threads = int(os.environ.get("PRIVET_BENCH_DP_THREADS", "2"))
    steps = int(os.environ.get("PRIVET_BENCH_RAY_STEPS", "8"))
    batch = int(os.environ.get("PRIVET_BENCH_RAY_BATCH", "64"))
    length = int(os.environ.get("PRIVET_BENCH_RAY_LENGTH", "64"))
    model = os.environ.get("PRIVET_BENCH_RAY_MODEL", "minilm-shaped")
    if model == "minilm-shaped":
        spec = build_tiny_bert(
            tmp_path / "minilm-shaped",
            name=model,
            words=WORDS,
            hidden_size=384,
            num_layers=6,
            num_heads=12,
            intermediate_size=1536,
            max_position_embeddings=512,
        )
        CATALOG.register(spec, replace=True)
    else:
        spec = CATALOG.get(model)
    n = batch * steps
    data, held_out = _data(n, WORDS), _data(64, WORDS, seed=1)
    config = _config(spec.name, batch, length)
    print(
        f"\nDP ranks without Ray, {spec.name}, global batch {batch}, length {length}, {steps} steps"
    )
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("  cuda: not available")
            continue
        base = None
        for workers in (1, 2):
            each = max(1, threads // workers)
            outcomes = run_local_ranks(
                config, data, held_out, workers=workers, spec=spec, device=device, threads=each
            )
            examples = sum(o.examples_seen for o in outcomes)
            seconds = outcomes[0].train_s
            rate = examples / seconds
            base = base or rate
            assert [o.noise_additions for o in outcomes] == [outcomes[0].steps] + [0] * (
                workers - 1
            )
            print(
                f"  {device}: {workers} worker(s) x {each} thread(s): {rate:8.1f} examples/s "
                f"({examples} examples in {seconds:.1f} s) = {rate / base:.2f}x the 1-worker run"
            )
