"""Executor settings: where training jobs run (`PRIVET_EXECUTOR`, `PRIVET_RAY_*`).

Kept in this package (like the jobs' and the ledger's settings) so the choice of executor
needs no change to the platform's Settings. `PRIVET_RAY_ADDRESS` alone selects Ray.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from privet.config import settings_getter


class ExecutorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVET_", extra="ignore")

    executor: Literal["local", "ray"] | None = Field(
        default=None,
        description="Where a worker runs the jobs it claims: `local` (in the worker's own "
        "process) or `ray` (N data-parallel processes on a Ray cluster). Unset: `ray` when "
        "PRIVET_RAY_ADDRESS is set, else `local`.",
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster to submit training to, e.g. `ray://10.0.0.5:10001` or "
        "`10.0.0.5:6379`; `local` starts a private Ray instance inside the worker (tests, "
        "one machine). Bind the cluster to loopback or a private network and give every "
        "node the same RAY_AUTH_TOKEN (docs/SCALING.md).",
    )
    ray_namespace: str = Field(
        default="privet", description="Ray namespace the worker's actors live in."
    )
    ray_default_workers: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Data-parallel processes for a job that does not ask for `workers`.",
    )
    ray_max_workers: int = Field(
        default=16, ge=1, le=1024, description="Upper bound on `workers` a job may ask for."
    )
    ray_cpus_per_worker: float = Field(
        default=1.0, gt=0, description="Ray CPUs reserved by each training process."
    )
    ray_gpus_per_worker: float = Field(
        default=0.0,
        ge=0,
        description="Ray GPUs reserved by each training process; above 0 the processes "
        "train on CUDA and talk over NCCL, otherwise on CPU over gloo.",
    )
    ray_backend: Literal["gloo", "nccl"] | None = Field(
        default=None,
        description="torch.distributed backend; unset: NCCL when processes have GPUs, else "
        "gloo (gloo also works on CUDA tensors, e.g. several processes sharing one GPU).",
    )
    ray_collective_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="A collective (all-reduce) that waits longer than this fails the job "
        "(a training process died or hangs).",
    )
    training_trusted_network: bool = Field(
        default=False,
        description="The operator declares the network between Ray nodes private and "
        "trusted. Data-parallel DP-SGD all-reduces each step's clipped, *un-noised* "
        "gradients in plaintext over gloo/NCCL (noise is added once, after the sum), so "
        "without this declaration a job whose ranks land on more than one node is refused; "
        "ranks on one node talk over loopback only.",
    )
    training_device: str = Field(
        default="auto",
        pattern=r"^(auto|cpu|cuda|cuda:[0-9]{1,3})$",
        description="Device a worker trains on: `auto` (CUDA when torch sees a GPU, else the "
        "CPU), `cpu`, `cuda` or `cuda:N`. A device that is not there stops the worker at "
        "start-up with the reason. On Ray each process trains on the GPU Ray reserved for it "
        "(PRIVET_RAY_GPUS_PER_WORKER > 0): `auto` or `cuda` there, not `cuda:N`.",
    )
    training_precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="`bf16`: forward passes under bfloat16 autocast (faster on GPUs from "
        "Ampere on, and on CPUs with AVX512-BF16/AMX); per-sample gradient norms, clipping "
        "and noise stay in fp32, so the DP guarantee is unchanged. Private jobs need "
        "grad_sample_mode `bk` with it.",
    )
    ray_poll_interval_s: float = Field(
        default=0.25,
        gt=0,
        description="How often the worker collects progress from Ray and forwards "
        "cancellation to it.",
    )

    @property
    def effective_executor(self) -> str:
        if self.executor is not None:
            return self.executor
        return "ray" if self.ray_address else "local"


@settings_getter
def get_executor_settings() -> ExecutorSettings:
    """The process's ExecutorSettings, read once (``privet.config.settings_getter``)."""
    return ExecutorSettings()
