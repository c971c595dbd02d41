"""Serving settings, read from PRIVET_INFERENCE_* environment variables."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from privet.config import settings_getter

ServingPrecision = Literal["fp32", "bf16"]
"""What served forward passes compute in (training/device.py's precisions; this module
does not import torch)."""
SERVING_PRECISIONS: tuple[str, ...] = get_args(ServingPrecision)


class InferenceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVET_INFERENCE_", extra="ignore")

    max_items: int = Field(
        default=64, ge=1, le=1024, description="Most texts one predict request may carry."
    )
    max_text_chars: int = Field(
        default=20_000, ge=1, description="Longest text accepted (characters)."
    )
    max_length: int = Field(
        default=256,
        ge=8,
        le=4096,
        description="Tokens kept per text (longer texts are truncated; capped by the "
        "model's position embeddings).",
    )
    cache_max_models: int = Field(
        default=4, ge=1, description="Decrypted model versions kept in memory (LRU)."
    )
    cache_max_bytes: int = Field(
        default=2 << 30,
        ge=1,
        description="Bytes of parameters kept in memory across cached versions (LRU); "
        "a single larger model is still served, alone.",
    )
    batch_max_items: int = Field(
        default=64, ge=1, description="Most texts one forward pass of the micro-batcher takes."
    )
    batch_max_wait_ms: float = Field(
        default=2.0,
        ge=0,
        description="How long the micro-batcher waits for more requests once one arrived.",
    )
    state_ttl_s: float = Field(
        default=1.0,
        ge=0,
        le=2.0,
        description="How long a version's state (approved/retired) is trusted before the "
        "database is asked again: a retired version stops serving on every replica "
        "within this time.",
    )
    device: str = Field(
        default="auto",
        pattern=r"^(auto|cpu|cuda|cuda:[0-9]{1,3})$",
        description="Device served models compute on: `auto` (CUDA when torch sees a GPU, "
        "else the CPU), `cpu`, `cuda` or `cuda:N`. `privet serve` refuses to start on a "
        "device that is not there, with the reason.",
    )
    precision: ServingPrecision = Field(
        default="fp32",
        description="`bf16`: served forward passes under bfloat16 autocast on the inference "
        "device (faster on GPUs from Ampere on, and on CPUs with AVX512-BF16/AMX); the "
        "probabilities are computed in fp32 from the logits. Every `prediction.made` event "
        "names the precision. `privet serve` refuses a value this machine cannot honour, "
        "at start-up.",
    )
    cache_max_device_bytes: int = Field(
        default=0,
        ge=0,
        description="Bytes of parameters kept on the GPU across cached versions (LRU); 0: "
        "bounded by PRIVET_INFERENCE_CACHE_MAX_BYTES only. Ignored on the CPU.",
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        description="Intra-op threads of torch in a serving process (0: torch's default, "
        "one per core). With several uvicorn workers, cores / workers avoids "
        "oversubscription; process-wide, set when the first model loads.",
    )
    explain_max_tokens: int = Field(
        default=256, ge=1, description="Most tokens an occlusion explanation covers."
    )
    case_text_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days the sealed text of a review case (a prediction the decision rules "
        "referred or held for review) is kept when no review closes it first; then its "
        "data key is destroyed (crypto-shredding).",
    )


@settings_getter
def get_inference_settings() -> InferenceSettings:
    """The process's InferenceSettings, read once (``privet.config.settings_getter``)."""
    return InferenceSettings()
