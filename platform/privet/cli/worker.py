"""`privet worker` (a standalone training worker) and the local worker `privet serve` runs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Annotated, Any

import typer
from pydantic import ValidationError

log = logging.getLogger("privet.cli.worker")


def worker(
    once: Annotated[bool, typer.Option(help="Run at most one job, then exit.")] = False,
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many seconds without a job.")
    ] = None,
    worker_id: Annotated[str | None, typer.Option(help="Name in job records and logs.")] = None,
) -> None:
    """Run a training worker: claim queued jobs (exactly once), heartbeat, reap jobs of dead
    workers. Reads PRIVET_* and PRIVET_JOBS_* settings; run as many as the hardware allows."""
    from privet import migrate
    from privet.config import get_settings
    from privet.jobs.executor_worker import make_worker
    from privet.kit import logs
    from privet.runtime import build_worker_runtime

    settings = get_settings()
    logs.configure(settings.log_level)
    runtime = build_worker_runtime(settings)  # no pepper, no signing key, no HMAC secrets
    if not migrate.is_current(runtime.engine):
        typer.echo("error: the database is not initialised or not current", err=True)
        raise typer.Exit(1)
    problem = device_problem(training=True, serving=False)
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    w = make_worker(runtime, worker_id=worker_id)  # Ray when PRIVET_RAY_ADDRESS is set

    def stop(signum: int, _frame: Any) -> None:
        log.info("worker %s: signal %d, stopping", w.worker_id, signum)
        w.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    w.run(max_jobs=1 if once else None, idle_exit_s=idle_exit)


def device_problem(*, training: bool, serving: bool) -> str | None:
    """Why the device settings cannot be honoured on this machine (None: they can), checked
    at start-up: PRIVET_TRAINING_DEVICE/PRECISION for a worker (on Ray: against the GPUs
    each process reserves), PRIVET_INFERENCE_DEVICE/PRECISION for the gateway. A value its
    settings refuse outright (PRIVET_INFERENCE_PRECISION=fp16) is named the same way."""
    from privet.executors.base import local_world, ray_device_spec
    from privet.executors.settings import ExecutorSettings, get_executor_settings
    from privet.inference.served import DEVICE_SETTING, PRECISION_SETTING
    from privet.inference.settings import InferenceSettings, get_inference_settings
    from privet.training.device import DeviceError, check_precision, resolve_device

    try:
        if training:
            executor = get_executor_settings()
            if executor.effective_executor == "ray":
                ray_device_spec(executor)
            else:
                log.info("training on %s", local_world(executor))
        if serving:
            config = get_inference_settings()
            device = resolve_device(config.device, setting=DEVICE_SETTING)
            check_precision(config.precision, device, setting=PRECISION_SETTING)
    except DeviceError as exc:
        return str(exc)
    except ValidationError as exc:
        settings = ExecutorSettings if exc.title == ExecutorSettings.__name__ else InferenceSettings
        return settings_problem(exc, prefix=str(settings.model_config.get("env_prefix", "")))
    return None


def settings_problem(exc: ValidationError, *, prefix: str) -> str:
    """A settings ``ValidationError`` as the variables to fix: ``PRIVET_X='value': what is
    wrong`` for each."""
    return "; ".join(
        f"{prefix}{str(error['loc'][0]).upper() if error['loc'] else ''}="
        f"{error.get('input')!r}: {error['msg']}"
        for error in exc.errors()
    )


class LocalWorker:
    """One worker subprocess supervised by `privet serve`: restarted if it dies, stopped
    (SIGTERM, then SIGKILL) when the server stops."""

    def __init__(self, *, restart_after_s: float = 2.0, env: dict[str, str] | None = None) -> None:
        self.restart_after_s = restart_after_s
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name="local-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "privet.cli.run_worker"], env=self.env or dict(os.environ)
        )

    def _supervise(self) -> None:
        while True:
            with self._lock:
                if self._stopping.is_set():
                    break
                self.process = self._spawn()
            code = self.process.wait()
            if self._stopping.is_set():
                break
            log.warning(
                "local worker exited with %s; restarting in %g s", code, self.restart_after_s
            )
            self._stopping.wait(self.restart_after_s)

    def stop(self, timeout: float = 20.0) -> None:
        with self._lock:
            self._stopping.set()
            proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(timeout=5)
