"""Benchmark (c): SST-2 dev accuracy at ε = 8 vs non-private, same rows, same passes.

    pytest tests/benchmarks/test_training_sst2.py -s
    (defaults: PRIVET_BENCH_SST2_ROWS=8000, full dev set, PRIVET_BENCH_EPOCHS=6,
     PRIVET_BENCH_STRATEGY=bitfit, DP: PRIVET_BENCH_OPTIMIZER=sgd PRIVET_BENCH_DP_LR=0.3
     PRIVET_BENCH_DP_HEAD_LR=1.0 PRIVET_BENCH_LOGICAL_BATCH=512; non-private: AdamW
     PRIVET_BENCH_NP_LR=2e-3 PRIVET_BENCH_NP_HEAD_LR=3e-2; PRIVET_BENCH_ONLY=dp|non-private)

Both runs see the same fixed-seed subset of ../shared/data/sst2/train.tsv for the same
number of epochs (example passes); the dev set is dev.tsv. Prints absolute accuracies and
the gap in points (target <= 3). Long on a 2-core CPU: shrink with the env vars first.
"""

from __future__ import annotations

import pytest

from tests.benchmarks import training_bench


@pytest.mark.shared_data
def test_sst2_gap() -> None:
    dp, np_ = training_bench.run_sst2()
    gap = 100 * (np_.metrics.accuracy - dp.metrics.accuracy)  # same strategy, each side tuned
    print(
        f"SST-2: DP acc {dp.metrics.accuracy:.4f} (eps {dp.privacy.epsilon:.3f}) vs "
        f"non-private {np_.metrics.accuracy:.4f}: gap {gap:.1f} points"
    )
    assert dp.privacy is not None and dp.privacy.epsilon <= 8.0
    assert gap <= 3.0
