"""The PII scan's cost on text of other scripts, against ASCII text, in the same run.

Run on demand (benchmarks are excluded from the default run):

    python -m pytest -s tests/benchmarks/test_pii_scan.py

Each corpus is 20 000 cells of about 60 characters: English reviews with numbers (the
baseline), Chinese reviews (CJK, no digits), Chinese reviews with ASCII numbers, and the
same with fullwidth numbers (folded to ASCII before matching, issue 21). The ingest path
runs ``may_hold_pii`` on every cell and ``PiiScan.scan`` on the cells it lets through; the
figure is cells/s and its ratio to the baseline. No assertion about time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from privet.datasets.pii import PiiScan, may_hold_pii

N = 20_000
WORDS_EN = "the delivery was late but the food was great and hot we ordered again".split()
CJK = "这家外卖送得很快味道也不错就是价格有点贵下次还会再点服务态度很好"


def _english(rng: random.Random) -> str:
    words = rng.choices(WORDS_EN, k=10)
    return " ".join(words) + f" order {rng.randint(100, 99999)} at {rng.randint(1, 12)} pm"


def _chinese(rng: random.Random) -> str:
    return "".join(rng.choices(CJK, k=40))


def _chinese_numbers(rng: random.Random) -> str:
    return _chinese(rng) + f"订单{rng.randint(100, 99999)}号 {rng.randint(1, 12)}点送到"


def _fullwidth(rng: random.Random) -> str:
    return _chinese_numbers(rng).translate({c: c + 0xFEE0 for c in range(0x30, 0x3A)})


def _rate(texts: list[str]) -> float:
    best = float("inf")
    for _ in range(3):
        scan = PiiScan()
        started = time.perf_counter()
        for line, text in enumerate(texts):
            if may_hold_pii(text):
                scan.scan(text, line)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def test_scan_throughput_by_script() -> None:
    corpora: dict[str, Callable[[random.Random], str]] = {
        "English with numbers (baseline)": _english,
        "Chinese, no digits": _chinese,
        "Chinese with ASCII numbers": _chinese_numbers,
        "Chinese with fullwidth numbers": _fullwidth,
    }
    rates = {}
    for name, make in corpora.items():
        rng = random.Random(21)
        rates[name] = _rate([make(rng) for _ in range(N)])
    base = rates["English with numbers (baseline)"]
    for name, rate in rates.items():
        print(f"{name:34s} {rate:10.0f} cells/s  {rate / base:5.2f}x the baseline")
