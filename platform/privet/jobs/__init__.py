"""Training jobs: durable state machine, privacy-budget ledger, queue and workers.

- `service`: admission (`prepare_submission`), `submit`, `record_refusal`, `list_jobs`,
  `get_job`, `cancel` — called by the gateway;
- `budget`: reserve at admission, charge at start, release only if never started;
- `queue`: claim exactly once, heartbeat, reap stale jobs, finish;
- `worker.Worker`: the loop `privet worker` and `privet serve` run;
- `executor_worker.make_worker`: that worker for the configured executor (local, or
  `ExecutorWorker` on Ray); jobs import `privet.executors`, never the reverse.

No FastAPI here; see docs/JOBS.md.
"""
