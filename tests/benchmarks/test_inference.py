"""Predictions/s through the HTTP API against the bare model forward pass, and latency.

Run on demand (benchmarks are excluded from the default run):

    python -m pytest -s tests/benchmarks/test_inference.py
    python tests/benchmarks/test_inference.py [--rounds 4] [--batches 6] [--singles 200]

PRIVET_BENCH_THREADS=N sets torch's intra-op threads here and in the server alike.

A real `privet serve` (one uvicorn worker, SQLite, local keys) serves a MiniLM-L6
classifier (the shipped base model with a random 2-class head, registered and approved
through the model registry). Texts are long enough that every one is truncated to 64
tokens, so every batch is 32 x 64. In the same run, alternating rounds time:

- baseline: the bare forward pass of the same model on the same 32 x 64 batches, already
  tokenized, in this process (torch.inference_mode, eval);
- API: the same batches as `POST ...:predict` requests (authentication, Cedar decision,
  version check, tokenization, micro-batcher, forward, 32 ledger events and prediction
  rows committed, JSON) from one client, one request at a time; and from two clients at
  once (the micro-batcher may combine them);

and prints predictions/s of each and their ratio to the baseline (target >= 0.85), then
p50/p99 latency of single-item requests against the bare forward of one text. Nothing
is asserted about time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BATCH = 32
LENGTH = 64
PURPOSE = "credit_scoring"


def _texts(tokenizer: Any, n: int, seed: int) -> list[str]:
    """Texts of real words, each at least LENGTH tokens long (truncated to LENGTH)."""
    rng = random.Random(seed)
    vocab = [w for w in tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) > 2]
    return [" ".join(rng.choices(vocab, k=LENGTH + 20)) for _ in range(n)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(rounds: int = 4, batches: int = 6, singles: int = 200) -> dict[str, float]:
    import httpx
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from privet.config import Settings
    from privet.db import dispose_engines
    from privet.runtime import build_runtime
    from privet.training.catalog import DEFAULT_BASE_MODEL, load_finetuned
    from tests.conftest import predictor_key
    from tests.e2e.conftest import start_server, stop_server
    from tests.inference.conftest import classifier_weights, register_version

    threads = int(os.environ.get("PRIVET_BENCH_THREADS", "0"))
    env = {}
    if threads:  # the same torch threads here and in the server
        torch.set_num_threads(threads)
        env["PRIVET_INFERENCE_TORCH_THREADS"] = str(threads)
    tmp = Path(tempfile.mkdtemp(prefix="privet-infer-bench-"))
    home = tmp / "home"
    server = start_server(home, env=env, args=("--workers", "1", "--no-worker"))
    try:
        runtime = build_runtime(Settings(home=home))
        with server.client() as http:
            created = http.post("/v1/projects", json={"name": "bench"}).json()
            project, creator = created["id"], created["created_by"]
        weights = classifier_weights(DEFAULT_BASE_MODEL, 2)
        register_version(
            runtime, project, base_model=DEFAULT_BASE_MODEL, weights=weights, max_length=LENGTH
        )
        key = predictor_key(runtime, project, name="bench-app", key_name="bench", creator=creator)

        loaded = load_finetuned(weights, base_model=DEFAULT_BASE_MODEL, num_labels=2)
        model, tokenizer = loaded.model.eval(), loaded.tokenizer
        data = [_texts(tokenizer, BATCH, seed) for seed in range(batches)]
        encoded = [
            dict(
                tokenizer(
                    texts, padding=True, truncation=True, max_length=LENGTH, return_tensors="pt"
                )
            )
            for texts in data
        ]
        assert all(e["input_ids"].shape == (BATCH, LENGTH) for e in encoded)
        url = f"/v1/projects/{project}/models/risk/versions/1:predict"
        headers = {"Authorization": f"Bearer {key}"}

        def forward_batches() -> float:
            started = time.perf_counter()
            with torch.inference_mode():
                for batch in encoded:
                    model(**batch)
            return time.perf_counter() - started

        # On a thread of its own, as the server's micro-batcher runs the model.
        forward_thread = ThreadPoolExecutor(1)

        def forward_all() -> float:
            return forward_thread.submit(forward_batches).result()

        def post(http: httpx.Client, texts: list[str]) -> None:
            body = {"items": [{"text": t} for t in texts], "purpose": PURPOSE}
            response = http.post(url, json=body)
            if response.status_code != 200:
                raise RuntimeError(response.text)

        def api_all(http: httpx.Client) -> float:
            started = time.perf_counter()
            for texts in data:
                post(http, texts)
            return time.perf_counter() - started

        def api_two_clients(clients: list[httpx.Client]) -> float:
            started = time.perf_counter()
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda c: api_all(c), clients))
            return time.perf_counter() - started

        with (
            httpx.Client(base_url=server.url, headers=headers, timeout=300) as http,
            httpx.Client(base_url=server.url, headers=headers, timeout=300) as http2,
        ):
            post(http, data[0])  # load the model into the server's cache
            forward_all()  # warm this process too
            base_t = api_t = two_t = 0.0
            for number in range(rounds):
                b1 = forward_all()
                a1 = api_all(http)
                b2 = forward_all()
                a2 = api_two_clients([http, http2])
                base_t, api_t, two_t = base_t + b1 + b2, api_t + a1, two_t + a2
                print(
                    f"round {number + 1}: forward {batches / b1:.2f}/{batches / b2:.2f} "
                    f"batches/s, API one client {batches / a1:.2f}, two clients "
                    f"{2 * batches / a2:.2f}",
                    flush=True,
                )
            n = rounds * batches * BATCH
            base_rate = 2 * n / base_t
            api_rate = n / api_t
            two_rate = 2 * n / two_t

            # Single-item latency, and the bare forward of one text for reference.
            singles_data = _texts(tokenizer, singles, 1000)
            latencies = []
            for text in singles_data:
                started = time.perf_counter()
                post(http, [text])
                latencies.append(time.perf_counter() - started)
            one = [
                dict(tokenizer([t], truncation=True, max_length=LENGTH, return_tensors="pt"))
                for t in singles_data[:50]
            ]

            def bare_singles() -> list[float]:
                times = []
                with torch.inference_mode():
                    for batch in one:
                        started = time.perf_counter()
                        model(**batch)
                        times.append(time.perf_counter() - started)
                return times

            bare = forward_thread.submit(bare_singles).result()
            forward_thread.shutdown()
    finally:
        stop_server(server)
        dispose_engines()

    figures = {
        "forward_per_s": base_rate,
        "api_per_s": api_rate,
        "api_ratio": api_rate / base_rate,
        "api2_per_s": two_rate,
        "api2_ratio": two_rate / base_rate,
        "single_p50_ms": statistics.median(latencies) * 1000,
        "single_p99_ms": _percentile(latencies, 0.99) * 1000,
        "forward1_p50_ms": statistics.median(bare) * 1000,
    }
    print(
        f"\nMiniLM-L6, batches of {BATCH} x {LENGTH} tokens, {rounds} rounds x {batches} "
        f"batches, torch threads {torch.get_num_threads()} (this process)"
    )
    print(f"{'path':<52} {'predictions/s':>14} {'x forward':>10}")
    for name, rate in (
        ("bare forward pass (baseline, pre-tokenized)", base_rate),
        ("HTTP API, one client, 32 texts/request", api_rate),
        ("HTTP API, two clients, 32 texts/request", two_rate),
    ):
        print(f"{name:<52} {rate:>14.1f} {rate / base_rate:>10.3f}")
    print(
        f"single-item requests ({singles}): p50 {figures['single_p50_ms']:.1f} ms, "
        f"p99 {figures['single_p99_ms']:.1f} ms (bare forward of one text: p50 "
        f"{figures['forward1_p50_ms']:.1f} ms)"
    )
    return figures


@pytest.mark.timeout(7200)
def test_inference_throughput_and_latency() -> None:
    figures = run(
        rounds=int(os.environ.get("PRIVET_BENCH_ROUNDS", "4")),
        batches=int(os.environ.get("PRIVET_BENCH_BATCHES", "6")),
        singles=int(os.environ.get("PRIVET_BENCH_SINGLES", "200")),
    )
    assert figures["api_per_s"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--singles", type=int, default=200)
    args = parser.parse_args()
    run(rounds=args.rounds, batches=args.batches, singles=args.singles)
