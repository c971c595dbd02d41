"""The training worker: claim a queued job, train it in this process, register the result.

One job at a time per worker process. While training, a heartbeat thread records the
worker's heartbeat and the job's progress every `heartbeat_interval_s` and picks up
cancellation requests; the training loop checks the flag before every physical batch, so
a cancelled job stops within about one heartbeat interval plus one batch. Every idle poll
also reaps jobs whose worker stopped heartbeating. Decrypted data stays in this process's
memory and the weights leave it only encrypted.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from privet.authorization import CedarAuthorizer
from privet.crypto.context import ServiceRuntime
from privet.db import session_scope
from privet.executors.base import local_world
from privet.jobs import budget, distill, errortext, history, queue, recipes, registration, warmstart
from privet.jobs.catalog import ensure_catalog
from privet.jobs.records import finite, privacy_record, training_record
from privet.jobs.settings import JobSettings, get_job_settings
from privet.jobs.sources import DatasetSource, get_dataset_source
from privet.jobs.tables import JobEnd, JobState, TrainingJob
from privet.kit.ids import utcnow
from privet.models.tables import ModelVersion
from privet.training import TrainingCancelled, TrainingConfig, TrainingResult, train
from privet.training.data import LabelledTexts
from privet.training.progress import ProgressEvent
from privet.training.warmstart import WarmStart
from privet.training.world import World

log = logging.getLogger("privet.jobs.worker")


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class _Run:
    job_id: str
    progress: dict[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False
    lost: bool = False
    history: history.HistoryRecorder = field(default_factory=history.HistoryRecorder)
    parent: dict[str, Any] | None = None
    """What the new version records of the one a warm start began from."""
    teacher: dict[str, Any] | None = None
    """What a student's version records of its teacher (distillation)."""
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class JobTraining:
    """What one job's training takes besides the job: what the worker hands to its hook
    `Worker.train_job`. `init`: weights to start from (a warm start); `validation`: the
    split model selection reads, when the config selects."""

    config: TrainingConfig
    train_data: LabelledTexts
    eval_data: LabelledTexts
    progress: Callable[[ProgressEvent], None]
    should_cancel: Callable[[], bool]
    init: WarmStart | None = None
    validation: LabelledTexts | None = None


class WorkerContext(ServiceRuntime, Protocol):
    """What a job worker needs of its runtime: a ``privet.runtime.WorkerRuntime`` (the
    gateway's ``Runtime`` in tests), which stands above jobs."""

    @property
    def authorizer(self) -> CedarAuthorizer: ...


class Worker:
    """A job worker over one runtime (its own database engine, keys and blob store)."""

    def __init__(
        self,
        runtime: WorkerContext,
        *,
        worker_id: str | None = None,
        settings: JobSettings | None = None,
        source: DatasetSource | None = None,
        world: World | None = None,
    ) -> None:
        self.runtime = runtime
        self.worker_id = worker_id or default_worker_id()
        self.settings = settings or get_job_settings()
        self.source = source or get_dataset_source()
        self.world = world if world is not None else local_world()  # a bad device stops us now
        self.stop_event = threading.Event()

    # -- loop ---------------------------------------------------------------------------

    def run(self, *, max_jobs: int | None = None, idle_exit_s: float | None = None) -> int:
        """Poll until stopped (or `max_jobs` done / idle for `idle_exit_s`); jobs run."""
        ensure_catalog()
        done = 0
        idle_since = time.monotonic()
        log.info("worker %s started", self.worker_id)
        while not self.stop_event.is_set():
            try:
                worked = self.tick()
            except Exception:  # database unreachable, etc.: log, back off, keep serving
                log.exception("worker %s: poll failed; retrying", self.worker_id)
                self.stop_event.wait(max(1.0, self.settings.poll_interval_s))
                continue
            if worked:
                done += 1
                idle_since = time.monotonic()
                if max_jobs is not None and done >= max_jobs:
                    break
            else:
                if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    break
                self.stop_event.wait(self.settings.poll_interval_s)
        log.info("worker %s stopped after %d job(s)", self.worker_id, done)
        return done

    def stop(self) -> None:
        self.stop_event.set()

    def reap(self) -> list[str]:
        with session_scope(self.runtime.engine) as session:
            reaped = queue.reap_stale(session, timeout_s=self.settings.heartbeat_timeout_s)
        for job_id in reaped:
            log.warning("reaped job %s: its worker stopped heartbeating", job_id)
        return reaped

    def claim(self) -> TrainingJob | None:
        with session_scope(self.runtime.engine) as session:
            return queue.claim_next(session, worker_id=self.worker_id)

    def tick(self) -> bool:
        """Reap stale jobs, then claim and run one job; False when there was none."""
        self.reap()
        job = self.claim()
        if job is None:
            return False
        self.execute(job)
        return True

    # -- one job ------------------------------------------------------------------------

    def _heartbeat_loop(self, run: _Run) -> None:
        interval = self.settings.heartbeat_interval_s
        while not run.done.wait(interval):
            with run.lock:
                progress = dict(run.progress) if run.progress else None
            try:
                with session_scope(self.runtime.engine) as session:
                    owned, cancel = queue.heartbeat(
                        session, job_id=run.job_id, worker_id=self.worker_id, progress=progress
                    )
            except Exception:  # a transient database error: try again next beat
                log.exception("heartbeat for job %s failed", run.job_id)
                continue
            if not owned:
                run.lost = True
            if cancel:
                run.cancel_requested = True

    def execute(self, job: TrainingJob) -> None:
        run = _Run(job_id=job.id)
        beat = threading.Thread(target=self._heartbeat_loop, args=(run,), daemon=True)
        beat.start()
        try:
            self._execute(job, run)
        finally:
            run.done.set()
            beat.join(timeout=10)

    def _config(self, job: TrainingJob, *, contains_personal_data: bool) -> TrainingConfig:
        return recipes.config_from_params(
            job.params,
            base_model=job.base_model,
            private=job.private,
            target_epsilon=job.target_epsilon,
            delta=job.delta,
            contains_personal_data=contains_personal_data,
            secure_mode=self.settings.secure_noise,
            class_weights=recipes.recorded_class_weights(job.recipe),
            logit_adjustment=recipes.recorded_logit_adjustment(job.recipe),
        )

    def train_job(self, job: TrainingJob, training: JobTraining) -> TrainingResult:
        """The hook executors override to train elsewhere (e.g. on Ray); by default
        `privet.training.train` in this process, from `training.init`'s weights when
        given (a warm start), selecting the epoch on `training.validation` when the config
        says so. It must raise TrainingCancelled when `training.should_cancel()` turns true
        and never write data or weights to disk."""
        return train(
            training.config,
            training.train_data,
            training.eval_data,
            progress=training.progress,
            should_cancel=training.should_cancel,
            init=training.init,
            validation=training.validation,
            world=self.world,
        )

    def _execute(self, job: TrainingJob, run: _Run) -> None:
        try:
            result, facts, eval_name = self._load_and_train(job, run)
        except TrainingCancelled as exc:
            self._stopped(job, run, exc)
            return
        except Exception as exc:
            # The message may quote a training row: the log gets the class, the job gets
            # the text sealed (privet.jobs.errortext), the ledger gets a code.
            log.error("job %s failed: %s", job.id, errortext.class_name(exc))
            if run.lost:
                return
            with run.lock:
                progress = dict(run.progress)
            self._finish(
                job,
                state=JobState.failed,
                error=JobEnd.training_error,
                exc=exc,
                reason=f"training failed ({errortext.class_name(exc)}); its ε stays charged",
                progress=progress,
                recorder=run.history,
            )
            return
        try:
            self._succeed(job, run, result, facts, eval_name)
        except Exception as exc:  # e.g. the blob store is full: the job fails, ε stays spent
            log.error("job %s: registering its model failed: %s", job.id, type(exc).__name__)
            self._finish(
                job,
                state=JobState.failed,
                error=JobEnd.registration_failed,
                exc=exc,
                reason=f"registering the model failed ({errortext.class_name(exc)}); its ε "
                "stays charged",
                progress=dict(run.progress),
                recorder=run.history,
            )

    def _load_and_train(self, job: TrainingJob, run: _Run) -> tuple[TrainingResult, Any, str]:
        """Decrypt the job's dataset version in memory and train on it; (result, dataset
        facts, name of the split evaluation used)."""

        def on_progress(event: ProgressEvent) -> None:
            run.history.add(event)
            with run.lock:
                run.progress = {
                    "step": event.step,
                    "total_steps": event.total_steps,
                    "epoch": event.epoch,
                    "epochs": event.epochs,
                    "loss": finite(event.loss),
                    "epsilon": finite(event.epsilon),
                    "updated_at": utcnow().isoformat(),
                }

        def should_cancel() -> bool:
            return run.cancel_requested or run.lost or self.stop_event.is_set()

        with session_scope(self.runtime.engine) as session:
            facts = self.source.facts(
                session, project_id=job.project_id, version_id=job.dataset_version_id
            )
            splits = self.source.load(session, self.runtime, facts=facts)
            init = warmstart.load_init(session, self.runtime, job)
            parent = session.get(ModelVersion, init.source) if init is not None else None
            run.parent = None if parent is None else warmstart.parent_record(parent)
            teacher = distill.load_teacher(session, self.runtime, self.source, job)
        config = self._config(job, contains_personal_data=facts.contains_personal_data)
        if teacher is not None:  # a student, trained here (admission refused Ray)
            run.teacher = teacher.record
            result, eval_name = distill.train(
                teacher, splits, config, progress=on_progress, should_cancel=should_cancel,
                world=self.world,
            )  # fmt: skip
            return result, facts, eval_name
        eval_name, eval_data = next(
            (name, data)
            for name, data in (
                ("test", splits.test),
                ("validation", splits.validation),
                ("train", splits.train),
            )
            if data is not None
        )
        result = self.train_job(
            job,
            JobTraining(
                config,
                splits.train,
                eval_data,
                progress=on_progress,
                should_cancel=should_cancel,
                init=init,
                validation=splits.validation,
            ),
        )
        del splits, init
        run.history.add_selection(result)
        return result, facts, eval_name

    def _stopped(self, job: TrainingJob, run: _Run, exc: TrainingCancelled) -> None:
        """A run that stopped on request, on worker shutdown, or because another worker
        took the job (then this one abandons it and writes nothing)."""
        if run.lost:
            log.warning("job %s was taken from this worker; abandoning it", job.id)
            return
        with run.lock:
            progress = dict(run.progress)
        if run.cancel_requested:
            state, end, reason = (
                JobState.cancelled,
                JobEnd.cancelled_on_request,
                f"cancelled on request after {exc.steps} step(s)",
            )
        else:
            state, end = JobState.failed, JobEnd.worker_shutdown
            reason = f"worker {self.worker_id} shut down after {exc.steps} step(s)"
        self._finish(
            job,
            state=state,
            error=end,
            reason=reason + "; its ε stays charged",
            progress=progress,
            details={"steps": exc.steps},
            recorder=run.history,
        )

    def _finish(
        self,
        job: TrainingJob,
        *,
        state: JobState,
        error: JobEnd,
        reason: str,
        progress: dict[str, Any],
        exc: BaseException | None = None,
        details: dict[str, Any] | None = None,
        recorder: history.HistoryRecorder | None = None,
    ) -> None:
        with session_scope(self.runtime.engine) as session:
            locked = queue.lock_owned(session, job_id=job.id, worker_id=self.worker_id)
            if locked is None:
                return
            if recorder is not None:  # the curve up to where it stopped
                history.save(session, job=locked, recorder=recorder)
            if exc is not None:
                errortext.seal_error(
                    session,
                    provider=self.runtime.key_provider,
                    job=locked,
                    text=f"{type(exc).__name__}: {exc}",
                )
            queue.finish(
                session,
                job=locked,
                state=state,
                reason=reason,
                error=error,
                error_type=None if exc is None else errortext.class_name(exc),
                progress=progress or None,
                details=details,
            )

    def _succeed(
        self, job: TrainingJob, run: _Run, result: TrainingResult, facts: Any, eval_name: str
    ) -> None:
        privacy = privacy_record(result)
        metrics = result.metrics.to_dict()
        metrics.pop("labels", None)
        training = training_record(result, eval_name)
        final_progress = dict(run.progress)
        with session_scope(self.runtime.engine) as session:
            locked = queue.lock_owned(session, job_id=job.id, worker_id=self.worker_id)
            if locked is None:
                log.warning("job %s was taken from this worker; discarding its result", job.id)
                return
            summary = {
                "accuracy": metrics.get("accuracy"),
                "macro_f1": metrics.get("macro_f1"),
                "worst_class": metrics.get("worst_class"),
                "worst_class_f1": metrics.get("worst_class_f1"),
                "examples": metrics.get("examples"),
                "evaluated_on": eval_name,
                "evaluation_seen_by_selection": training["evaluation_seen_by_selection"],
            }
            queue.finish(
                session,
                job=locked,
                state=JobState.succeeded,
                result={"metrics": summary, "privacy": privacy, "training": training},
                progress=final_progress or None,
                details={
                    "epsilon": None if privacy is None else format(privacy["epsilon"], ".6g"),
                    "steps": result.steps,
                },
            )
            history.save(session, job=locked, recorder=run.history)
            budget.record_selection(session, job=locked, privacy=privacy)
            version_id = registration.register(
                session,
                runtime=self.runtime,
                policy_version=getattr(
                    getattr(self.runtime.authorizer, "engine", None), "version", None
                ),
                source=self.source,
                job=job,
                result=result,
                facts=facts,
                privacy=privacy,
                metrics=metrics,
                training=training,
                parent=run.parent,
                teacher=run.teacher,
            )
            locked.model_version_id = version_id
            locked.result = {**(locked.result or {}), "model_version_id": version_id}
            session.add(locked)
