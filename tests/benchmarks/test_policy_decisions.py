"""Authorization decisions per second through privet.policy, with the policy set parsed once.

Run on demand (benchmarks are excluded from the default run):

    python -m pytest -s tests/benchmarks/test_policy_decisions.py
    python tests/benchmarks/test_policy_decisions.py [--seconds 2]

Prints decisions/s and per-decision latency (p50/p99) for four paths measured in the
same run, and each as a ratio to the baseline: Cedar re-parsing the policy text on
every call (what the engine avoids by parsing once). No timed assertion.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cedarpy

if not __package__:  # run as a script: the repository root, for `tests.policy`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from privet.policy import PolicyEngine, build_request, default_policy_dir
from tests.policy.helpers import model_version_request, submit_request


def _decide_predict(engine: PolicyEngine) -> Any:
    return engine.decide(**model_version_request())


def _decide_train(engine: PolicyEngine) -> Any:
    return engine.decide(**submit_request(epsilon=3.0))


def _measure(fn: Callable[[], Any], seconds: float) -> dict[str, float]:
    for _ in range(50):
        fn()
    samples: list[float] = []
    clock = time.perf_counter
    deadline = clock() + seconds
    while clock() < deadline:
        t0 = clock()
        fn()
        samples.append(clock() - t0)
    samples.sort()
    return {
        "per_s": len(samples) / sum(samples),
        "p50_us": statistics.median(samples) * 1e6,
        "p99_us": samples[int(len(samples) * 0.99) - 1] * 1e6,
        "n": float(len(samples)),
    }


def run(seconds: float = 1.0, policy_dir: Path | None = None) -> dict[str, dict[str, float]]:
    """Measure every path in this process and print a table; returns the figures."""
    directory = policy_dir or default_policy_dir()
    engine = PolicyEngine.load(directory)
    assert _decide_predict(engine).allowed and _decide_train(engine).allowed
    prepared = build_request(**model_version_request())
    policy_text = "\n".join(
        p.read_text() for p in sorted(directory.glob("*.cedar"), key=lambda p: p.name)
    )
    schema = cedarpy.Schema.from_str((directory / "schema.cedarschema").read_text())

    def reparse_each_call() -> Any:
        return cedarpy.is_authorized(
            dict(prepared.cedar_request), policy_text, prepared.cedar_entities, schema=schema
        )

    paths: dict[str, Callable[[], Any]] = {
        "baseline: cedarpy re-parsing policy text per call": reparse_each_call,
        "engine.evaluate(prepared request)": lambda: engine.evaluate(prepared),
        "engine.decide(predict) = build + authorize": lambda: _decide_predict(engine),
        "engine.decide(training submit) = build + authorize": lambda: _decide_train(engine),
    }
    figures = {name: _measure(fn, seconds) for name, fn in paths.items()}
    base = figures["baseline: cedarpy re-parsing policy text per call"]["per_s"]
    print(f"\npolicy set: {len(engine.policy_ids)} policies, version {engine.version}")
    print(f"{'path':<55} {'decisions/s':>12} {'p50 µs':>8} {'p99 µs':>8} {'x baseline':>10}")
    for name, f in figures.items():
        print(
            f"{name:<55} {f['per_s']:>12,.0f} {f['p50_us']:>8.1f} {f['p99_us']:>8.1f}"
            f" {f['per_s'] / base:>10.2f}"
        )
    return figures


def test_policy_decisions_per_second() -> None:
    figures = run(seconds=1.0)
    assert all(f["n"] > 0 for f in figures.values())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    run(seconds=args.seconds, policy_dir=args.dir)
