"""Monitoring settings, read from PRIVET_MONITORING_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from privet.config import settings_getter


class MonitoringSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVET_MONITORING_", extra="ignore")

    enabled: bool = Field(
        default=True,
        description="Keep drift aggregates at prediction time and judge drift and "
        "quality (off: nothing is aggregated; decision rules still apply).",
    )
    decision_rules: bool = Field(
        default=True,
        description="Evaluate the Cedar decision rules on every prediction. Off makes "
        "every decision final (adverse ones too): for benchmarks and tests only.",
    )
    window_s: int = Field(
        default=3600, ge=1, description="Length of one monitoring time window (seconds)."
    )
    flush_every: int = Field(
        default=256,
        ge=1,
        description="Predictions aggregated in memory before a delta row is written "
        "(in the request's transaction).",
    )
    flush_interval_s: float = Field(
        default=10.0, ge=0, description="Longest time aggregates wait in memory."
    )
    judge_interval_s: float = Field(
        default=30.0,
        ge=0,
        description="Least time between two drift judgements of one version by one "
        "process (a judgement sums the window's delta rows).",
    )
    min_window_count: int = Field(
        default=50,
        ge=1,
        description="Predictions a window needs before its drift scores are judged.",
    )
    min_outcomes: int = Field(
        default=20, ge=1, description="Outcomes a window needs before its quality is judged."
    )
    psi_threshold: float = Field(
        default=0.2, ge=0, description="PSI above which a histogram feature has drifted."
    )
    js_threshold: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Jensen-Shannon divergence (base 2) above which the predicted-label "
        "distribution has drifted.",
    )
    embedding_threshold: float = Field(
        default=0.5,
        ge=0,
        description="Mean standardised shift of the sentence-embedding sketch above "
        "which it has drifted.",
    )
    accuracy_floor: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Live accuracy below which a window crosses the quality threshold "
        "(unset: the version's accuracy at approval minus accuracy_drop).",
    )
    accuracy_drop: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Drop from the accuracy at approval that crosses the quality "
        "threshold when no floor is set.",
    )
    auto_suspend: bool = Field(
        default=False,
        description="Suspend a version whose live quality crosses the threshold (an "
        "approver resumes it).",
    )
    min_sketch_count: int = Field(
        default=20,
        ge=1,
        description="Embeddings a delta row needs before their moments are written; fewer "
        "wait in memory for more of the same window (dropped when it ends), so a stored "
        "sketch never describes one text or a handful.",
    )
    sketch_dims: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Embedding dimensions kept in the sketch (first N of the pooled "
        "sentence embedding; per-dimension sum and sum of squares).",
    )
    reference_max_rows: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="Most rows of the evaluation split classified to build a version's "
        "drift reference at approval; a larger split is sampled with a fixed seed (the "
        "reference records how many rows it used).",
    )


@settings_getter
def get_monitoring_settings() -> MonitoringSettings:
    """The process's MonitoringSettings, read once (``privet.config.settings_getter``).

    The hot path reads them on every predict request: a cached object costs nothing."""
    return MonitoringSettings()
