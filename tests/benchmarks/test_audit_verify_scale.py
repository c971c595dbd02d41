"""Benchmark: `privet audit verify` of the live database at a year's scale (issue 23).

Run on demand, at any size (the seeded database is built once and cached, see
tests/benchmarks/seeded.py):

    PRIVET_BENCH_EVENTS=100000 PRIVET_BENCH_BACKENDS=sqlite \\
        pytest tests/benchmarks/test_audit_verify_scale.py -s -p no:cacheprovider

test_audit_verify.py times the offline verifier on an exported bundle; this one times
the verifier of the live database (``privet.ledger.verify.verify_ledger``, which
`privet audit verify` calls) on a seeded one, each run in a fresh process so that its
peak RSS is its own. Baseline, measured in the same run on the same database: a process
that reads every entry in index order and SHA-256 hashes it (the least any verifier
does). Prints time, entries/s, peak RSS (and above the process's RSS before verifying),
per-entry figures and the ratio to the baseline; run it at two sizes to read the growth
per entry. No timed assertion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.benchmarks.seeded import SeededLedger

REPO = Path(__file__).resolve().parents[2]

_PRELUDE = """
import json, time
from sqlmodel import Session
from privet.db import create_db_engine
from privet.ledger.verify import verify_ledger
engine = create_db_engine(URL)
with Session(engine) as s:  # connect and warm up before the baseline RSS
    s.connection()
def status_kb(field):
    # VmRSS: the resident set now; VmHWM: its peak. Not ru_maxrss, which on Linux starts
    # at the parent's RSS when it forked (exec keeps the larger of the two).
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
before = status_kb("VmRSS")
t, cpu = time.perf_counter(), time.process_time()
"""

_VERIFY = """
with Session(engine) as session:
    report = verify_ledger(session=session)
assert report.ok, report.message
done = report.entries_verified
"""

_READ_AND_HASH = """
import hashlib
from sqlalchemy import text
sha = hashlib.sha256
done = 0
with engine.connect() as conn:
    rows = conn.execution_options(yield_per=5000).execute(text(
        "SELECT e.event FROM ledger_leaves l JOIN ledger_entries e ON e.id = l.entry_id "
        "ORDER BY l.idx"))
    for (event,) in rows:
        sha(b"\\x00" + bytes(event)).digest()
        done += 1
"""

_REPORT = """
seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
peak = status_kb("VmHWM")
print(json.dumps(
    {"entries": done, "seconds": seconds, "cpu": cpu, "peak_kb": peak, "before_kb": before}
))
"""


def _measure(seeded: SeededLedger, body: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "PRIVET_HOME": str(seeded.home),
        "PRIVET_DATABASE_URL": seeded.url,
        "PYTHONPATH": os.pathsep.join(["platform", "audit", "."]),
    }
    code = f"URL = {seeded.url!r}\n" + _PRELUDE + body + _REPORT
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_audit_verify_live_database(seeded_ledger: SeededLedger) -> None:
    base = _measure(seeded_ledger, _READ_AND_HASH)
    run = _measure(seeded_ledger, _VERIFY)
    n = run["entries"]
    # the traffic, plus the seed's brackets and its project and people
    assert n == base["entries"] > seeded_ledger.events
    grown_kb = max(0, run["peak_kb"] - run["before_kb"])
    built = (
        "cached"
        if seeded_ledger.built_in is None
        else f"seeded in {seeded_ledger.built_in:.1f}s this run"
    )
    print(
        f"\n[audit verify, live {seeded_ledger.backend}] {n:,} entries ({built}): "
        f"{run['seconds']:.2f}s (CPU {run['cpu']:.2f}s) = {n / run['seconds']:,.0f} entries/s, "
        f"{run['seconds'] / n * 1e6:.1f} us/entry; peak RSS {run['peak_kb'] / 1024:.0f} MB "
        f"({grown_kb / 1024:.1f} MB above its resident set before verifying, "
        f"{grown_kb * 1024 / n:.1f} bytes/entry); baseline read + SHA-256 "
        f"{base['seconds']:.2f}s (CPU {base['cpu']:.2f}s) = "
        f"{base['entries'] / base['seconds']:,.0f} entries/s "
        f"(peak {base['peak_kb'] / 1024:.0f} MB); verify = "
        f"{run['seconds'] / base['seconds']:.2f}x the baseline's time"
    )
