"""A job worker whose training runs on an executor (Ray), and `make_worker`.

`ExecutorWorker` is `privet.jobs.worker.Worker` — same claim-once queue, heartbeats,
progress, cancellation, reaping, ledger events, budget and registration — with one
difference: the `train(...)` call of the job is handed to an executor.

Until the jobs package grows a hook for that (see docs/SCALING.md, "Hook"), the hand-over
works through the module attribute `privet.jobs.worker.train`: `install_dispatch()`
replaces it, once, by `_dispatch`, which calls the executor bound to the *current job of
the current thread* (a context variable set by `ExecutorWorker.execute`) and otherwise
the original `privet.training.train`. A plain `Worker` in the same process is unaffected.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Any

from privet.executors.base import Executor, JobSpec, LocalExecutor
from privet.executors.settings import ExecutorSettings, get_executor_settings
from privet.training import TrainingConfig, TrainingResult
from privet.training import train as _original_train
from privet.training.data import LabelledTexts

log = logging.getLogger("privet.executors.worker")

_current: contextvars.ContextVar[tuple[Executor, JobSpec] | None] = contextvars.ContextVar(
    "privet_executor_job", default=None
)
_install_lock = threading.Lock()
#: What `privet.jobs.worker.train` was before `install_dispatch` (normally
#: `privet.training.train`): plain workers in this process keep calling it.
_fallback: list[Any] = [_original_train]


def _dispatch(
    config: TrainingConfig,
    train_data: LabelledTexts,
    eval_data: LabelledTexts,
    *,
    progress: Any = None,
    should_cancel: Any = None,
    **kwargs: Any,
) -> TrainingResult:
    bound = _current.get()
    if bound is None or kwargs:
        result: TrainingResult = _fallback[0](
            config, train_data, eval_data, progress=progress, should_cancel=should_cancel, **kwargs
        )
        return result
    executor, job = bound
    return executor.train(
        job,
        config,
        train_data,
        eval_data,
        progress=progress or (lambda _e: None),
        should_cancel=should_cancel or (lambda: False),
    )


def install_dispatch() -> None:
    """Route `privet.jobs.worker`'s `train` call through `_dispatch` (idempotent)."""
    from privet.jobs import worker as jobs_worker

    with _install_lock:
        current = getattr(jobs_worker, "train", None)
        if current is not _dispatch:
            _fallback[0] = current or _original_train
            jobs_worker.train = _dispatch  # type: ignore[attr-defined]


def _worker_class() -> type:
    from privet.jobs.worker import Worker

    class ExecutorWorker(Worker):
        """`Worker` whose jobs train on `executor`."""

        def __init__(
            self,
            runtime: Any,
            *,
            executor: Executor,
            executor_settings: ExecutorSettings | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(runtime, **kwargs)
            self.executor = executor
            self.executor_settings = executor_settings or get_executor_settings()
            install_dispatch()

        def execute(self, job: Any) -> None:
            spec = JobSpec.from_job(job, default_workers=self.executor_settings.ray_default_workers)
            token = _current.set((self.executor, spec))
            try:
                super().execute(job)
            finally:
                _current.reset(token)

        def run(self, *args: Any, **kwargs: Any) -> int:
            # Reach the executor (the Ray cluster) before claiming anything: a job claimed
            # is charged, so an unreachable cluster must stop the worker, not fail jobs.
            connect = getattr(self.executor, "connect", None)
            if connect is not None:
                connect()
            try:
                return int(super().run(*args, **kwargs))
            finally:
                self.executor.close()

    return ExecutorWorker


_cls: type | None = None


def executor_worker_class() -> type:
    global _cls
    if _cls is None:
        _cls = _worker_class()
    return _cls


def make_executor(settings: ExecutorSettings | None = None) -> Executor:
    settings = settings or get_executor_settings()
    if settings.effective_executor == "ray":
        from privet.executors.ray_executor import RayExecutor

        return RayExecutor(settings)
    return LocalExecutor()


def make_worker(
    runtime: Any,
    *,
    worker_id: str | None = None,
    executor_settings: ExecutorSettings | None = None,
    executor: Executor | None = None,
    **kwargs: Any,
) -> Any:
    """The worker `privet worker` should run: a plain `Worker` for the local executor, an
    `ExecutorWorker` on Ray when PRIVET_RAY_ADDRESS (or PRIVET_EXECUTOR=ray) says so.
    Other keyword arguments (`settings`: JobSettings, `source`) go to the worker."""
    from privet.jobs.worker import Worker

    settings = executor_settings or get_executor_settings()
    if executor is None and settings.effective_executor == "local":
        return Worker(runtime, worker_id=worker_id, **kwargs)
    executor = executor or make_executor(settings)
    log.info("training jobs run on the %s executor", executor.name)
    return executor_worker_class()(
        runtime, executor=executor, executor_settings=settings, worker_id=worker_id, **kwargs
    )
