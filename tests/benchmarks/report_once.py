"""One access-log report, timed in this process, on a log filled once (issue 23's report
target: 10^6 events in <= 60 s and <= 300 MB).

``test_report_scaling.py`` fills a fresh log at every run; this keeps the log between
runs, so two trees (a branch and main) can be timed on the same database:

    PYTHONPATH=platform:audit python tests/benchmarks/report_once.py fill URL HOME 1000000
    PYTHONPATH=platform:audit python tests/benchmarks/report_once.py run URL HOME [OUT]

``fill`` migrates an empty database and appends ``auth.decision`` events up to the
given size, as ``test_report_scaling.py`` does (``fill URL HOME N START`` goes on from
``START``). ``run`` builds the access-log report of every decision under the latest
checkpoint and renders it as JSON to ``OUT`` (default: a temporary file, removed), then
prints wall and CPU seconds, both per event, and the process's peak RSS; ``verify`` does
the same, then checks the file with ``privet_audit.verify_report`` (which holds the whole
JSON in memory: ~7x the file).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import test_report_scaling as bench


def fill(url: str, home: str, size: int, start: int) -> None:
    Path(home).mkdir(mode=0o700, parents=True, exist_ok=True)
    if start == 0:
        from privet import migrate
        from privet.db import create_db_engine

        engine = create_db_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    bench._fill(url, home, start, size)


def run(url: str, home: str, out: str, verify: bool) -> None:
    from privet.db import read_session
    from privet.reports.kinds.access_log import build_access_log
    from privet.reports.render import iter_render

    ledger = bench._ledger(url, home)
    wall, cpu = time.perf_counter(), time.process_time()
    with read_session(ledger.engine) as s:
        report = build_access_log(s, None, actor="prn_bench", max_rows=10**8)  # type: ignore[arg-type]
        n = len(report.tables[0].rows)
        with open(out, "wb") as fh:
            for chunk in iter_render(report, "json"):
                fh.write(chunk)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{n:,} events: {wall:.2f} s wall ({wall / n * 1e6:.0f} us/event), {cpu:.2f} s CPU "
        f"({cpu / n * 1e6:.0f} us/event), peak RSS {peak:.0f} MB, "
        f"{Path(out).stat().st_size / 1e6:.0f} MB of JSON"
    )
    if verify:
        from privet_audit.report import verify_report

        verdict = verify_report(out)
        print(verdict.message)
        assert verdict.ok and verdict.events_verified == n


def main(argv: list[str]) -> None:
    mode, url, home = argv[:3]
    if mode == "fill":
        fill(url, home, int(argv[3]), int(argv[4]) if len(argv) > 4 else 0)
        return
    if len(argv) > 3:
        run(url, home, argv[3], mode == "verify")
        return
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        run(url, home, out, mode == "verify")
    finally:
        os.unlink(out)


if __name__ == "__main__":
    main(sys.argv[1:])
