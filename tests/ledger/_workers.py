"""Process entry points for the multi-process tests and the benchmark (spawned, so they
must be importable)."""

from __future__ import annotations

import time
from typing import Any


def append_worker(
    url: str, worker: int, n: int, go: Any, results: Any, *, sequencer: bool = True
) -> None:
    """Append ``n`` events, each committed in its own transaction, and report back."""
    from privet.db import create_db_engine, session_scope
    from privet.ledger import emit
    from privet.ledger.sequencer import start_sequencer, stop_sequencer

    engine = create_db_engine(url)
    seq = start_sequencer(engine) if sequencer else None
    ids: list[int] = []
    errors: list[str] = []
    with session_scope(engine) as s:  # warm the connection pool
        s.connection()
    go.wait()
    started = time.perf_counter()
    for i in range(n):
        try:
            with session_scope(engine) as s:
                ids.append(emit(s, type="test.append", actor=f"prn_w{worker}", details={"i": i}))
        except Exception as exc:  # reported to the parent
            errors.append(repr(exc))
    elapsed = time.perf_counter() - started
    if seq is not None:
        stop_sequencer(engine)
        errors.extend(["sequencer error"] * seq.errors)
    engine.dispose()
    results.put({"worker": worker, "ids": ids, "seconds": elapsed, "errors": errors})
