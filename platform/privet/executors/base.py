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

from privet.executors.settings import ExecutorSettings, get_executor_settings
from privet.training import TrainingConfig, TrainingResult, train
from privet.training.data import LabelledTexts
from privet.training.device import DeviceError, check_precision, resolve_device
from privet.training.progress import ProgressEvent
from privet.training.world import World

DEVICE_SETTING = "PRIVET_TRAINING_DEVICE"
PRECISION_SETTING = "PRIVET_TRAINING_PRECISION"


def local_world(settings: ExecutorSettings | None = None) -> World:
    """The world of a training in this process: the device and precision the settings
    name, checked now (DeviceError says why a device cannot be used and what to set)."""
    s = settings or get_executor_settings()
    device = resolve_device(s.training_device, setting=DEVICE_SETTING)
    precision = check_precision(s.training_precision, device, setting=PRECISION_SETTING)
    return World(device=device, precision=precision)


def ray_device_spec(settings: ExecutorSettings) -> str:
    """`cuda` or `cpu`: what each Ray process trains on. Ray hands a process the GPUs it
    reserved for it (PRIVET_RAY_GPUS_PER_WORKER) as its only visible ones, so the device
    follows the reservation; a setting that contradicts it is refused at start-up."""
    spec, gpus = settings.training_device, settings.ray_gpus_per_worker
    if spec.startswith("cuda:"):
        raise DeviceError(
            f"{DEVICE_SETTING}={spec}: on Ray each process sees only the GPU Ray reserved "
            f"for it; set {DEVICE_SETTING}=cuda (or auto) and PRIVET_RAY_GPUS_PER_WORKER"
        )
    if spec == "cuda" and gpus <= 0:
        raise DeviceError(
            f"{DEVICE_SETTING}=cuda but PRIVET_RAY_GPUS_PER_WORKER is {gpus:g}: Ray gives a "
            "process no GPU it has not reserved; set PRIVET_RAY_GPUS_PER_WORKER (e.g. 1) or "
            f"{DEVICE_SETTING}=auto or cpu"
        )
    if spec == "cpu" and gpus > 0:
        raise DeviceError(
            f"{DEVICE_SETTING}=cpu but PRIVET_RAY_GPUS_PER_WORKER is {gpus:g}: each process "
            f"would hold a GPU it never uses; set PRIVET_RAY_GPUS_PER_WORKER=0 or "
            f"{DEVICE_SETTING}=auto"
        )
    return "cuda" if gpus > 0 else "cpu"


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

    def __init__(self, world: World | None = None) -> None:
        self.world = world if world is not None else local_world()

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
        return train(
            config,
            train_data,
            eval_data,
            progress=progress,
            should_cancel=should_cancel,
            world=self.world,
        )

    def close(self) -> None:
        return None
