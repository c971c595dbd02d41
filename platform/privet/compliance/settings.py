"""Compliance settings, read from PRIVET_COMPLIANCE_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from privet.config import settings_getter

REQUEST_LOG_MIN_DAYS = 730
"""CCPA regulations §7101: keep the request log at least 24 months."""


class ComplianceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVET_COMPLIANCE_", extra="ignore")

    erasure_remedy: Literal["auto", "retrain", "keep_with_dp"] = Field(
        default="auto",
        description="What an erasure does to model versions trained on the erased rows. "
        "retrain: submit a new training job on the dataset version without the subject. "
        "keep_with_dp: keep the model, its differential-privacy guarantee recorded as the "
        "justification (refused for non-private models, which are retrained). auto: keep "
        "a DP model whose ε is at most keep_max_epsilon, retrain any other.",
    )
    keep_max_epsilon: float = Field(
        default=8.0,
        gt=0,
        le=100,
        description="auto remedy: the largest ε for which a DP model is kept after erasure.",
    )
    request_log_days: int = Field(
        default=REQUEST_LOG_MIN_DAYS,
        ge=REQUEST_LOG_MIN_DAYS,
        description="How long a request stays in the log (at least 24 months); then its "
        "sealed subject id is crypto-shredded by `sweep_request_log`.",
    )
    ccpa_acknowledge_business_days: int = Field(default=10, ge=1, le=10)
    ccpa_response_days: int = Field(default=45, ge=1, le=45)
    max_report_rows: int = Field(
        default=10_000_000,
        ge=10,
        description="Most rows (and cited events) in one access-log report; JSON, CSV and "
        "HTML stream them with bounded memory.",
    )
    max_pdf_rows: int = Field(
        default=5000,
        ge=1,
        description="Most table rows in a PDF report (laid out whole in memory); a larger "
        "report is refused with a 422 pointing to CSV.",
    )


@settings_getter
def get_compliance_settings() -> ComplianceSettings:
    """The process's ComplianceSettings, read once (``privet.config.settings_getter``)."""
    return ComplianceSettings()
