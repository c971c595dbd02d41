"""Benchmark: the access-log report and its ledger evidence at two log sizes (issue 23).

Run on demand: ``pytest tests/benchmarks/test_report_scaling.py -s -p no:cacheprovider``
(``PRIVET_BENCH_REPORT_SIZES``: the log sizes, default ``2000,20000``;
``PRIVET_BENCH_REPORT_DB``: ``sqlite``, ``postgres`` or ``both``, default ``sqlite``).

The log is filled with ``auth.decision`` events through the real emit path (``emit_many``
in batches of 1,000, integrated and checkpointed by the sequencer). At each size, each
stage runs in a fresh process (so its peak RSS is its own):

* **read**: every event of the log read page by page (``list_events``): the baseline, the
  floor any report over these events pays;
* **evidence**: every event cited and its inclusion proof built (``Evidence``);
* **report**: the access-log report of every event built and rendered as JSON to a file
  (streamed where the renderer streams), then verified offline with
  ``privet_audit.verify_report``.

Prints seconds, peak RSS, the ratio to the read baseline of the same size, and the
per-event time at the larger size over that at the smaller one (1.0: linear). No timed
assertion. The same file runs unchanged on an older tree (it uses ``iter_render`` only
where it exists), which is how the before figures in docs/SCALING.md were taken.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

SIZES = [int(s) for s in os.environ.get("PRIVET_BENCH_REPORT_SIZES", "2000,20000").split(",")]
BACKENDS = os.environ.get("PRIVET_BENCH_REPORT_DB", "sqlite")
BATCH = 1000
STAGES = ("read", "evidence", "report")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ledger(url: str, home: str) -> Any:
    from privet.config import Settings, clear_settings_caches
    from privet.db import create_db_engine
    from privet.ledger.sequencer import Ledger, set_ledger
    from privet.ledger.settings import LedgerSettings

    os.environ["PRIVET_HOME"] = home
    os.environ["PRIVET_DATABASE_URL"] = url
    clear_settings_caches()
    engine = create_db_engine(url)
    ledger = Ledger(engine, Settings(home=Path(home)), LedgerSettings(checkpoint_every=BATCH))
    set_ledger(ledger)
    return ledger


def _fill(url: str, home: str, start: int, end: int) -> None:
    from privet.db import session_scope
    from privet.ledger import EventSpec, emit_many

    ledger = _ledger(url, home)
    for at in range(start, end, BATCH):
        with session_scope(ledger.engine) as s:
            emit_many(
                s,
                [
                    EventSpec(
                        "auth.decision",
                        f"prn_{i % 97:04d}",
                        project="prj_bench",
                        objects={"project": "prj_bench"},
                        outcome="deny" if i % 7 == 0 else "allow",
                        details={"action": ("project.read", "model.predict")[i % 2]},
                    )
                    for i in range(at, min(end, at + BATCH))
                ],
            )
        ledger.integrate_now()


def _stage(url: str, home: str, stage: str, n: int, out: str, results: Any) -> None:
    import importlib

    from privet.db import read_session
    from privet.ledger import queries
    from privet.reports.evidence import Evidence
    from privet.reports.kinds.access_log import build_access_log
    from privet_audit.report import verify_report

    ledger = _ledger(url, home)
    base_rss = _rss_mb()
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    with read_session(ledger.engine) as s:
        if stage == "read":
            start: int | None = 0
            seen = 0
            while start is not None:
                page = queries.list_events(session=s, start=start, limit=queries.MAX_PAGE)
                seen += len(page.items)
                start = page.next_start
            assert seen == n
        elif stage == "evidence":
            ev = Evidence(s)
            ev.events(type="auth.decision", limit=n)
            proofs = sum(len(e["inclusion_proof"]) for e in ev.to_json()["events"])
            assert proofs > 0
        else:
            report = build_access_log(s, None, actor="prn_bench", max_rows=n)  # type: ignore[arg-type]
            render = importlib.import_module("privet.reports.render")
            chunks = getattr(render, "iter_render", None)
            with open(out, "wb") as fh:
                if chunks is not None:
                    for chunk in chunks(report, "json"):
                        fh.write(chunk)
                else:
                    fh.write(render.render(report, "json"))
    seconds = time.perf_counter() - t0
    peak = _rss_mb()  # before the offline verifier, which reads the whole file
    if stage == "report":
        t1 = time.perf_counter()
        verdict = verify_report(out)
        extra["verify_s"] = time.perf_counter() - t1
        assert verdict.ok and verdict.events_verified == n, verdict.message
        extra["mb"] = Path(out).stat().st_size / 1e6
        extra["verify_mb"] = _rss_mb()
    results.put({"seconds": seconds, "peak_mb": peak, "base_mb": base_rss, **extra})


def _run(target: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, results))
    proc.start()
    while True:
        try:
            result: dict[str, Any] = results.get(timeout=2)
            break
        except queue.Empty:
            assert proc.is_alive(), f"{target.__name__} failed (exit code {proc.exitcode})"
    proc.join()
    assert proc.exitcode == 0
    return result


def _fill_worker(url: str, home: str, start: int, end: int, results: Any) -> None:
    _fill(url, home, start, end)
    results.put({})


@pytest.mark.timeout(7200)  # big sizes (10^6 events) run for long
def test_access_log_report_scaling(db_url: str, tmp_path: Path) -> None:
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    if BACKENDS not in ("both", backend):
        pytest.skip(f"PRIVET_BENCH_REPORT_DB={BACKENDS}")
    url, tmp = db_url, tmp_path
    home = tmp / "home"
    home.mkdir(mode=0o700)
    done = 0
    figures: dict[int, dict[str, dict[str, Any]]] = {}
    for n in SIZES:
        _run(_fill_worker, url, str(home), done, n)
        done = n
        figures[n] = {
            stage: _run(_stage, url, str(home), stage, n, str(tmp / f"report-{n}.json"))
            for stage in STAGES
        }
        read = figures[n]["read"]["seconds"]
        for stage in STAGES:
            f = figures[n][stage]
            extra = (
                f"; verify-report {f['verify_s']:.2f}s (peak RSS then {f['verify_mb']:.0f} MB), "
                f"{f['mb']:.1f} MB of JSON"
                if stage == "report"
                else ""
            )
            print(
                f"\n[report scaling {backend}] {n:>9,} events {stage:>8}: {f['seconds']:7.2f}s "
                f"({f['seconds'] / n * 1e6:6.0f} us/event, {f['seconds'] / read:5.1f}x read), "
                f"peak RSS {f['peak_mb']:.0f} MB (+{f['peak_mb'] - f['base_mb']:.0f} MB over "
                f"start){extra}",
                end="",
            )
    print_linearity(f"report scaling {backend}", figures, SIZES, STAGES)


def print_linearity(
    tag: str,
    figures: dict[int, dict[str, dict[str, Any]]],
    sizes: Sequence[int],
    stages: Sequence[str],
) -> None:
    """Each stage's time per event at the largest size over that at the smallest (1.0:
    linear in the log; below: sub-linear). ``figures[size][stage]["seconds"]``."""
    small, big = sizes[0], sizes[-1]
    for stage in stages:
        per_small = figures[small][stage]["seconds"] / small
        per_big = figures[big][stage]["seconds"] / big
        print(
            f"\n[{tag}] {stage}: time per event at {big:,} / at {small:,} "
            f"= {per_big / per_small:.2f} (1.0: linear)",
            end="",
        )
    print()
