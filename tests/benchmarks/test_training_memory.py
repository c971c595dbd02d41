"""Benchmark (b): DP / non-private whole-process peak RSS at physical batch 64 (on demand).

    pytest tests/benchmarks/test_training_memory.py -s
    (PRIVET_BENCH_STRATEGIES=top-6,full  PRIVET_BENCH_MODES=bk,ghost)

Each figure comes from a fresh subprocess (imports, MiniLM-L6 with the strategy applied,
three optimizer steps on 64 sentences x 64 tokens, then ru_maxrss), so runs cannot share
allocator state. Printed as a ratio to the non-private process with the same trainable
parameters. Target <= 1.3. No assertion on the figure.
"""

from __future__ import annotations

import os

from tests.benchmarks import training_bench


def test_peak_memory_ratio() -> None:
    strategies = os.environ.get("PRIVET_BENCH_STRATEGIES", "top-6,full").split(",")
    modes = os.environ.get("PRIVET_BENCH_MODES", "bk,ghost").split(",")
    lines = training_bench.memory_report(strategies, modes)
    assert len(lines) == len(strategies)
