"""One stage of the domain-report benchmark (``test_domain_report_scaling.py``), in this
process, on a seeded database; prints one JSON line.

    PYTHONPATH=platform:audit python tests/benchmarks/domain_report_once.py STAGE URL HOME OUT

``STAGE``: ``read`` (every event of the log read once, light rows: the baseline),
``dsr-log`` (the report of every request, rendered as JSON to ``OUT``, then checked with
``privet_audit.verify_report``) or ``model-lineage`` (the same for the model version that
served the most predictions). Time and peak RSS (``VmHWM``) are those of building and
rendering; the offline check is timed apart.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def _kb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process; not ru_maxrss, which on Linux starts
    at the parent's RSS when it forked."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _busiest(session: Any) -> tuple[str, int]:
    from sqlalchemy import func, select

    from privet.inference.tables import Prediction

    mv, n = session.exec(
        select(Prediction.model_version_id, func.count())  # type: ignore[call-overload]
        .group_by(Prediction.model_version_id)
        .order_by(func.count().desc())
        .limit(1)
    ).one()
    return str(mv), int(n)


def run(stage: str, url: str, home: str, out: str) -> dict[str, Any]:
    os.environ["PRIVET_HOME"], os.environ["PRIVET_DATABASE_URL"] = home, url
    from privet.db import create_db_engine, read_session
    from privet.ledger import queries
    from privet.reports.kinds.dsr_log import build_dsr_log
    from privet.reports.kinds.model_lineage import build_model_lineage
    from privet.reports.render import iter_render
    from privet_audit.report import verify_report

    engine = create_db_engine(url)
    runtime: Any = None  # neither report reads the runtime
    result: dict[str, Any] = {"stage": stage}
    with read_session(engine) as s:
        s.connection()
        subject = _busiest(s) if stage == "model-lineage" else None
        before, t0, cpu = _kb("VmRSS"), time.perf_counter(), time.process_time()
        if stage == "read":
            result["events"] = sum(1 for _ in queries.iter_event_rows(session=s))
        else:
            if subject is not None:
                report = build_model_lineage(
                    s, runtime, actor="usr_bench", model_version_id=subject[0]
                )
                result["version"], result["predictions"] = subject
            else:
                report = build_dsr_log(s, runtime, actor="usr_bench")
                result["requests"] = len(report.tables[0].rows)
            with open(out, "wb") as fh:
                for chunk in iter_render(report, "json"):
                    fh.write(chunk)
            result["cited"] = len(report.ledger["events"])
        result["seconds"] = time.perf_counter() - t0
        result["cpu"] = time.process_time() - cpu
        result["peak_mb"], result["before_mb"] = _kb("VmHWM") / 1024, before / 1024
    if stage != "read":
        result["json_mb"] = os.path.getsize(out) / 1e6
        t1 = time.perf_counter()
        verdict = verify_report(out)
        assert verdict.ok, verdict.message
        result["verify_s"] = time.perf_counter() - t1
    engine.dispose()
    return result


if __name__ == "__main__":
    print(json.dumps(run(*sys.argv[1:5])))
