"""The executor interface: where a claimed job's training runs.

A job worker (`privet.jobs.worker.Worker`) owns everything durable — claiming, heartbeat,
progress and cancellation in the database, ledger events, budget, registration. An
executor only turns (config, decrypted data) into a `TrainingResult`, calling `progress`
after every logical step and stopping with `TrainingCancelled` when `should_cancel()`
turns true. So job state, progress, cancellation, heartbeat and ledger events are the
same whichever executor runs the training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from privet.training import TrainingConfig, TrainingResult, train
from privet.training.data import LabelledTexts
from privet.training.progress import ProgressEvent


@dataclass(frozen=True)
class JobSpec:
    """What an executor needs to know about the job beyond its training config."""

    job_id: str
    project_id: str
    workers: int = 1

    @classmethod
    def from_job(cls, job: Any, *, default_workers: int = 1) -> JobSpec:
        params = dict(getattr(job, "params", None) or {})
        return cls(
            job_id=str(job.id),
            project_id=str(job.project_id),
            workers=int(params.get("workers") or default_workers),
        )


class Executor(Protocol):
    name: str

    def train(
        self,
        job: JobSpec,
        config: TrainingConfig,
        train_data: LabelledTexts,
        eval_data: LabelledTexts,
        *,
        progress: Callable[[ProgressEvent], None],
        should_cancel: Callable[[], bool],
    ) -> TrainingResult: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Train in the worker's own process (`privet.training.train`); one process per job.

    A job asking for `workers: N` runs as one process here: the accounting is the same
    (global batch, sample rate and steps do not depend on N), only the speed differs.
    """

    name = "local"

    def train(
        self,
        job: JobSpec,
        config: TrainingConfig,
        train_data: LabelledTexts,
        eval_data: LabelledTexts,
        *,
        progress: Callable[[ProgressEvent], None],
        should_cancel: Callable[[], bool],
    ) -> TrainingResult:
        return train(config, train_data, eval_data, progress=progress, should_cancel=should_cancel)

    def close(self) -> None:
        return None
