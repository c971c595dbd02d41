"""Benchmark (a): DP / non-private step time, MiniLM-L6, batch 64, length 64 (on demand).

    pytest tests/benchmarks/test_training_step_time.py -s
    (PRIVET_BENCH_STRATEGIES=top-6,full,top-2  PRIVET_BENCH_MODES=bk,ghost  PRIVET_BENCH_REPS=5)

For each trainable-parameter strategy — the same in the DP and the non-private run — the
median time of a full optimizer step (forward, backward, clipping, noise, update) on the
same 64 SST-2 sentences padded to 64 tokens, runs interleaved in one process. The DP
figure is printed as a ratio to the non-private step. Target <= 1.3. No timed assertion.
"""

from __future__ import annotations

import os

from tests.benchmarks import training_bench


def test_step_time_ratio() -> None:
    strategies = os.environ.get("PRIVET_BENCH_STRATEGIES", "top-6,full,top-2").split(",")
    modes = os.environ.get("PRIVET_BENCH_MODES", "bk,ghost").split(",")
    reps = int(os.environ.get("PRIVET_BENCH_REPS", "5"))
    lines = training_bench.speed_report(strategies, modes, reps)
    assert len(lines) == len(strategies)
