"""Training jobs: durable state machine, privacy-budget ledger, queue and workers.

- `admission.admit`: prepare, policy, budget, submit — one flow for the gateway and an
  erasure's retraining;
- `service`: the admission's steps (`prepare_submission`, `submit`, `record_refusal`),
  `list_jobs`, `get_job`, `cancel` — called by the gateway;
- `budget`: reserve at admission, charge at start, release only if never started;
- `queue`: claim exactly once, heartbeat, reap stale jobs, finish;
- `worker.Worker`: the loop `privet worker` and `privet serve` run;
- `executor_worker.make_worker`: that worker for the configured executor (local, or
  `ExecutorWorker` on Ray); jobs import `privet.executors`, never the reverse.

No FastAPI here; see docs/JOBS.md.
"""
