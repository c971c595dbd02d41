"""Benchmark (d): SMS Spam Collection macro-F1 at ε = 8 vs non-private (on demand).

    pytest tests/benchmarks/test_training_sms.py -s
    (defaults: all rows, PRIVET_BENCH_EPOCHS=6, PRIVET_BENCH_SMS_LOGICAL_BATCH=256, and the
     recipes of test_training_sst2.py)

Stratified fixed-seed 80/20 split of ../shared/data/sms_spam/SMSSpamCollection; both runs
use the same training rows for the same number of epochs. Prints macro-F1 and accuracy
of both and the macro-F1 gap in points (target <= 3).
"""

from __future__ import annotations

import pytest

from tests.benchmarks import training_bench


@pytest.mark.shared_data
def test_sms_gap() -> None:
    dp, np_ = training_bench.run_sms()
    gap = 100 * (np_.metrics.macro_f1 - dp.metrics.macro_f1)
    print(
        f"SMS: DP macro-F1 {dp.metrics.macro_f1:.4f} acc {dp.metrics.accuracy:.4f} "
        f"(eps {dp.privacy.epsilon:.3f}) vs non-private macro-F1 {np_.metrics.macro_f1:.4f} "
        f"acc {np_.metrics.accuracy:.4f}: gap {gap:.1f} points"
    )
    assert dp.privacy is not None and dp.privacy.epsilon <= 8.0
    assert gap <= 3.0
