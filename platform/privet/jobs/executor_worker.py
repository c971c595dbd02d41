"""A job worker whose training runs on an executor (Ray), and `make_worker`.

`ExecutorWorker` is `privet.jobs.worker.Worker` — same claim-once queue, heartbeats,
progress, cancellation, reaping, ledger events, budget and registration — overriding only
its hook `train_job(job, training)`, which hands the training (`JobTraining`: config,
data, progress and cancellation callbacks) to an executor.

It lives in jobs, not in `privet.executors`: jobs use executors, and executors (where one
training runs) know nothing of the job queue, so imports run jobs → executors → training.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from privet.executors.base import Executor, JobSpec, LocalExecutor
from privet.executors.settings import ExecutorSettings, get_executor_settings
from privet.jobs.worker import JobTraining, Worker, WorkerContext
from privet.training import ConfigError, TrainingResult
from privet.training.world import World

log = logging.getLogger("privet.executors.worker")  # the logger's name from before the move


class ExecutorWorker(Worker):
    """`Worker` whose jobs train on `executor`."""

    def __init__(
        self,
        runtime: WorkerContext,
        *,
        executor: Executor,
        executor_settings: ExecutorSettings | None = None,
        **kwargs: Any,
    ) -> None:
        # The executor's device checks are its own (a Ray driver needs no GPU); a warm
        # start, which trains here, uses the local executor's world, else the CPU.
        kwargs.setdefault("world", getattr(executor, "world", None) or World())
        super().__init__(runtime, **kwargs)
        self.executor = executor
        self.executor_settings = executor_settings or get_executor_settings()

    def train_job(self, job: Any, training: JobTraining) -> TrainingResult:
        if training.init is not None and self.executor.name != "local":
            # admission refuses a warm start unless training is local
            raise ConfigError(
                f"warm start runs on the local executor only, not on {self.executor.name}"
            )
        if training.init is not None or self.executor.name == "local":
            return super().train_job(job, training)
        config = training.config
        if config.selection_share > 0:
            # The executors do not carry the validation split yet. Admission already
            # resolved selection to none on Ray (recipes.check_selection_executor); a job
            # admitted under the local executor still trains, without selection.
            log.warning("job %s: model selection runs on the local executor only", job.id)
            config = replace(config, selection_share=0.0, patience=None)
        spec = JobSpec.from_job(job, default_workers=self.executor_settings.ray_default_workers)
        return self.executor.train(
            spec,
            config,
            training.train_data,
            training.eval_data,
            progress=training.progress,
            should_cancel=training.should_cancel,
        )

    def run(self, *args: Any, **kwargs: Any) -> int:
        # Reach the executor (the Ray cluster) before claiming anything: a job claimed is
        # charged, so an unreachable cluster must stop the worker, not fail jobs.
        connect = getattr(self.executor, "connect", None)
        if connect is not None:
            connect()
        try:
            return int(super().run(*args, **kwargs))
        finally:
            self.executor.close()


def make_executor(settings: ExecutorSettings | None = None) -> Executor:
    settings = settings or get_executor_settings()
    if settings.effective_executor == "ray":
        from privet.executors.ray_executor import RayExecutor

        return RayExecutor(settings)
    return LocalExecutor()


def make_worker(
    runtime: WorkerContext,
    *,
    worker_id: str | None = None,
    executor_settings: ExecutorSettings | None = None,
    executor: Executor | None = None,
    **kwargs: Any,
) -> Worker:
    """The worker `privet worker` runs: a plain `Worker` for the local executor, an
    `ExecutorWorker` on Ray when PRIVET_RAY_ADDRESS (or PRIVET_EXECUTOR=ray) says so.
    Other keyword arguments (`settings`: JobSettings, `source`) go to the worker."""
    settings = executor_settings or get_executor_settings()
    if executor is None and settings.effective_executor == "local":
        return Worker(runtime, worker_id=worker_id, **kwargs)
    executor = executor or make_executor(settings)
    log.info("training jobs run on the %s executor", executor.name)
    return ExecutorWorker(
        runtime, executor=executor, executor_settings=settings, worker_id=worker_id, **kwargs
    )
