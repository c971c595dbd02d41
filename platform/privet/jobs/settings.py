"""Job and worker settings, read from PRIVET_JOBS_* environment variables.

Kept beside the jobs package (like the ledger's) so workers can be tuned without touching
the platform's Settings.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from privet.config import settings_getter


class JobSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVET_JOBS_", extra="ignore")

    heartbeat_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often a worker records its heartbeat and job progress, and looks "
        "for a cancellation request (a cancelled job stops within about this long).",
    )
    heartbeat_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A running job whose heartbeat is older than this is failed by the "
        "reaper (its worker is presumed dead); its ε stays charged.",
    )
    poll_interval_s: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for a queued job."
    )
    secure_noise: bool = Field(
        default=True,
        description="Draw DP noise and Poisson sampling from a CSPRNG (production). False "
        "uses seeded generators: reproducible, but the seed then reveals the noise.",
    )
    extra_catalog: Path | None = Field(
        default=None,
        description="JSON file adding base models to the allow-list, each pinned by the "
        "SHA-256 of its files: [{name, path, digests: {file: sha256}}]. For tests; the "
        "base-model registry (`privet base-models`) is the governed way, and a registry "
        "entry of the same name wins.",
    )
    local_worker_restart_s: float = Field(
        default=2.0,
        ge=0,
        description="`privet serve` restarts its local worker this long after it exits.",
    )


@settings_getter
def get_job_settings() -> JobSettings:
    """The process's JobSettings, read once (``privet.config.settings_getter``)."""
    return JobSettings()
