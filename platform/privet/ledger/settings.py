"""Ledger settings, read from PRIVET_LEDGER_* environment variables.

Kept beside the ledger (rather than in privet.config) so the ledger can be configured
without touching the platform's Settings; ``privet.config.Settings`` still provides
``home`` and ``secrets_dir``.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from privet.config import settings_getter


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVET_LEDGER_", extra="ignore")

    origin: str = Field(
        default="privet.local/ledger",
        description="Checkpoint origin line and signing key name (one token, no spaces).",
    )
    checkpoint_every: int = Field(
        default=1000, ge=1, description="Sign a checkpoint at least every N new events."
    )
    checkpoint_interval_s: float = Field(
        default=10.0, gt=0, description="...or at least every T seconds while the tree grows."
    )
    batch_size: int = Field(
        default=2000, ge=1, le=100_000, description="Most entries one sequencer pass integrates."
    )
    poll_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="Background integrator's periodic pass (catches other processes' entries).",
    )
    min_pass_interval_s: float = Field(
        default=0.05,
        ge=0,
        description="Least time between background passes: batches appends under load.",
    )
    max_event_bytes: int = Field(
        default=8192, ge=1024, description="Largest canonical event accepted by emit()."
    )
    group_commit_max_batch: int = Field(
        default=512,
        ge=1,
        le=10_000,
        description="Most events the group-commit appender writes in one transaction "
        "(one durable commit).",
    )
    group_commit_linger_s: float = Field(
        default=0.0,
        ge=0,
        le=1.0,
        description="Extra wait for more appends before a group commit (0: write what is "
        "queued as soon as the previous commit ends).",
    )
    append_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest a durable append waits for its group commit.",
    )
    signing_key_file: str = Field(
        default="ledger-signing-key.pem",
        description="File name of the Ed25519 signing key (PKCS#8 PEM, 0600) in secrets_dir.",
    )
    checkpoint_log: str = Field(
        default="checkpoints.log",
        description="File under PRIVET_HOME every signed checkpoint is appended to.",
    )


@settings_getter
def get_ledger_settings() -> LedgerSettings:
    """The process's LedgerSettings, read once (``privet.config.settings_getter``)."""
    return LedgerSettings()
