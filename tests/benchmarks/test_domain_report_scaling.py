"""Benchmark: the dsr-log and model-lineage reports on a seeded year at several sizes
(issue 23: 10^4, 10^5 and 10^6 events; target at 10^6 <= 60 s and <= 300 MB).

Run on demand (the seeded databases are built once and cached, tests/benchmarks/seeded.py)::

    PRIVET_BENCH_SEEDED_SIZES=10000,100000 PRIVET_BENCH_BACKENDS=sqlite \\
        pytest tests/benchmarks/test_domain_report_scaling.py -s -p no:cacheprovider

At each size, each stage runs in a fresh process (``domain_report_once.py``, so its peak
RSS is its own): **read** (every event of the log read once as light rows: the baseline,
the floor of any pass over the log), **dsr-log** (the report of every request, rendered
as JSON to a file) and **model-lineage** (the report of the model version that served the
most predictions); each report is then checked offline with
``privet_audit.verify_report`` (timed apart). Prints seconds, CPU seconds, peak RSS
(``VmHWM``), the ratio to the read baseline of the same size, and the per-event time at
the largest size over that at the smallest (1.0: linear in the log; below: sub-linear).
No timed assertion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.benchmarks.seeded import BACKENDS, SeededLedger, seeded
from tests.benchmarks.test_report_scaling import print_linearity

REPO = Path(__file__).resolve().parents[2]
SIZES = [int(s) for s in os.environ.get("PRIVET_BENCH_SEEDED_SIZES", "10000,100000").split(",")]
STAGES = ("read", "dsr-log", "model-lineage")


def _stage(db: SeededLedger, stage: str, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["platform", "audit", "."])}
    script = str(REPO / "tests" / "benchmarks" / "domain_report_once.py")
    done = subprocess.run(
        [sys.executable, script, stage, db.url, str(db.home), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _line(backend: str, n: int, f: dict[str, Any], read: float) -> str:
    what = (
        f"{f['requests']:,} requests"
        if "requests" in f
        else f"{f['predictions']:,} predictions served"
        if "predictions" in f
        else f"{f['events']:,} events"
    )
    extra = (
        f"; {f['cited']:,} events cited, {f['json_mb']:.1f} MB of JSON, verify-report "
        f"{f['verify_s']:.2f}s"
        if "cited" in f
        else ""
    )
    return (
        f"[domain reports {backend}] {n:>9,} events {f['stage']:>13}: {f['seconds']:7.2f}s "
        f"(CPU {f['cpu']:.2f}s, {f['seconds'] / n * 1e6:6.1f} us/event, "
        f"{f['seconds'] / read:5.2f}x read), peak RSS {f['peak_mb']:.0f} MB "
        f"(+{f['peak_mb'] - f['before_mb']:.0f} MB over start); {what}{extra}"
    )


@pytest.mark.timeout(7200)  # 10^6 events: the seed alone takes minutes
@pytest.mark.parametrize("backend", BACKENDS)
def test_domain_report_scaling(backend: str, tmp_path: Path) -> None:
    figures: dict[int, dict[str, dict[str, Any]]] = {}
    for n in SIZES:
        db = seeded(backend, n)
        figures[n] = {s: _stage(db, s, tmp_path / f"{s}-{n}.json") for s in STAGES}
        assert figures[n]["read"]["events"] > n
        assert figures[n]["dsr-log"]["requests"] > 0 < figures[n]["model-lineage"]["predictions"]
        read = figures[n]["read"]["seconds"]
        built = "cached" if db.built_in is None else f"seeded in {db.built_in:.0f}s"
        print(f"\n[domain reports {backend}] {n:,} events ({built})", end="")
        for stage in STAGES:
            print("\n" + _line(backend, n, figures[n][stage], read), end="")
    print_linearity(f"domain reports {backend}", figures, SIZES, STAGES)
