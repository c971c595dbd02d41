"""Prediction throughput with monitoring on against monitoring off, in the same run.

Run on demand (benchmarks are excluded from the default run):

    python -m pytest -s tests/benchmarks/test_monitoring_overhead.py
    python tests/benchmarks/test_monitoring_overhead.py [--rounds 4] [--batches 6] [--tiny]

In one process, on a migrated SQLite database, a MiniLM-L6 classifier (the shipped base
model with a random 2-class head, registered and approved through the registry) serves
batches of 32 texts truncated to 64 tokens through ``InferenceService.predict``, each
batch in its own committed transaction (prediction rows and 32 ledger events), exactly
the work of a predict request below HTTP. Rounds alternate:

- off: PRIVET_MONITORING_ENABLED=false and PRIVET_MONITORING_DECISION_RULES=false (no
  decision rules, no aggregates);
- on: the default settings: Cedar decision rules per prediction (the credit-scoring rules
  send most of a random head's predictions to review, so most batches also write queue
  rows), aggregates in memory with the embedding sketch from the forward hook, a delta
  row flushed and the drift judged every 256 predictions.

Prints predictions/s of each and the overhead of on over off (target <= 5%). ``--tiny``
uses a tiny BERT instead (a much cheaper forward pass: a harsher ratio). No assertion
about time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BATCH = 32
LENGTH = 64
PURPOSE = "credit_scoring"


def run(rounds: int = 4, batches: int = 6, tiny: bool = False) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from privet import migrate
    from privet.config import Settings, clear_settings_caches
    from privet.db import dispose_engines, get_engine, session_scope
    from privet.inference.schemas import PredictItem
    from privet.inference.service import InferenceService
    from privet.inference.versions import lookup_version
    from privet.training.catalog import CATALOG, DEFAULT_BASE_MODEL, build_tiny_bert
    from tests.inference.conftest import WORDS, classifier_weights, register_version

    tmp = Path(tempfile.mkdtemp(prefix="privet-monitor-bench-"))
    settings = Settings(home=tmp / "home")
    from privet.kit.secretfiles import ensure_private_dir

    ensure_private_dir(settings.home)
    migrate.upgrade(get_engine(settings.effective_database_url))
    from privet.runtime import build_runtime

    runtime = build_runtime(settings)
    base = DEFAULT_BASE_MODEL
    if tiny:
        spec = build_tiny_bert(
            tmp / "tiny", name="tiny-bench", words=WORDS, max_position_embeddings=LENGTH
        )
        CATALOG.register(spec, replace=True)
        base = spec.name
    project = "prj_bench"
    register_version(
        runtime, project, base_model=base, weights=classifier_weights(base, 2), max_length=LENGTH
    )
    service = InferenceService.from_runtime(runtime)
    rng = random.Random(5)
    words = WORDS if tiny else None
    if words is None:
        with session_scope(runtime.engine) as session:
            info = lookup_version(session, project_id=project, model="risk", version="1")
            tok = service.served(info).classifier.tokenizer
        words = [w for w in tok.get_vocab() if w.isalpha() and w.islower() and len(w) > 2]
    data = [
        [PredictItem(text=" ".join(rng.choices(words, k=LENGTH + 20))) for _ in range(BATCH)]
        for _ in range(batches)
    ]

    def timed(enabled: bool) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process: every thread, the batcher's too)."""
        os.environ["PRIVET_MONITORING_ENABLED"] = "true" if enabled else "false"
        os.environ["PRIVET_MONITORING_DECISION_RULES"] = "true" if enabled else "false"
        clear_settings_caches()
        wall, cpu = time.perf_counter(), time.process_time()
        for items in data:
            with session_scope(runtime.engine) as session:
                info = service.version(session, project_id=project, model="risk", version="1")
            scores = service.classify(info=info, items=items)
            with session_scope(runtime.engine) as session:
                service.record(
                    session,
                    info=info,
                    items=items,
                    scores=scores,
                    purpose=PURPOSE,
                    caller="prn_bench",
                )
        return time.perf_counter() - wall, time.process_time() - cpu

    timed(True)  # warm-up: load the model, parse policies, install the hook
    timed(False)
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for r in range(rounds):
        for enabled in (False, True) if r % 2 == 0 else (True, False):
            runs[enabled].append(timed(enabled))
    os.environ.pop("PRIVET_MONITORING_ENABLED", None)
    os.environ.pop("PRIVET_MONITORING_DECISION_RULES", None)
    clear_settings_caches()
    dispose_engines()
    n = BATCH * batches
    out: dict[str, float] = {}
    print(
        f"\nmonitoring overhead ({'tiny BERT' if tiny else 'MiniLM-L6'}, batches of {BATCH} x "
        f"{LENGTH} tokens, {rounds} interleaved rounds of {batches} batches):"
    )
    for k, what in ((0, "wall"), (1, "CPU")):
        off = [n / t[k] for t in runs[False]]
        on = [n / t[k] for t in runs[True]]
        off_med, on_med = statistics.median(off), statistics.median(on)
        out[f"{what}_off"], out[f"{what}_on"] = off_med, on_med
        out[f"{what}_ratio"] = on_med / off_med
        print(f"  {what:>4} off: {off_med:8.1f} predictions/s  rounds {[round(x) for x in off]}")
        print(f"  {what:>4} on:  {on_med:8.1f} predictions/s  rounds {[round(x) for x in on]}")
        print(
            f"  {what:>4} on/off = {on_med / off_med:.3f}: overhead "
            f"{(1 - on_med / off_med) * 100:.1f}% (target <= 5%)"
        )
    return out


def test_monitoring_overhead() -> None:
    run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    run(args.rounds, args.batches, args.tiny)
