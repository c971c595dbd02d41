"""Which device a training run or a served model computes on, and in what precision.

The operator names the device in a setting (``PRIVET_TRAINING_DEVICE``,
``PRIVET_INFERENCE_DEVICE``): ``auto`` (CUDA when ``torch.cuda.is_available()``, else the
CPU), ``cpu``, ``cuda`` (the current CUDA device) or ``cuda:N``. A device that is not
there is refused when the process starts (``resolve_device`` raises ``DeviceError`` saying
why and what to set), never discovered half-way through a job that has been charged ε.

Precision: ``fp32``, or ``bf16`` mixed precision (``torch.autocast``: matrix products in
bfloat16, parameters, optimizer state and everything DP rests on in float32). DP-SGD stays
correct under bf16 because the per-sample gradient norms, the clipping and the noise are
computed in float32 from the very tensors that are summed (training/bookkeeping.py): each
example's clipped contribution has norm at most C whatever the forward's dtype.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any, Literal

import torch

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")
DEVICE_PATTERN = r"^(auto|cpu|cuda|cuda:[0-9]{1,3})$"
"""What a device setting may say (the settings check it with this pattern)."""


class DeviceError(ValueError):
    """A device or precision setting this machine cannot honour (raised at start-up)."""


def resolve_device(spec: str, *, setting: str) -> torch.device:
    """The device `spec` names, after checking that this process can use it; `setting` is
    the environment variable it came from (for the message)."""
    if not re.fullmatch(DEVICE_PATTERN, spec):
        raise DeviceError(f"{setting}={spec!r} is not a device: set auto, cpu, cuda or cuda:N")
    if spec == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if spec == "auto":
        return (
            torch.device("cuda", torch.cuda.current_device()) if available else torch.device("cpu")
        )
    if not available:
        raise DeviceError(
            f"{setting}={spec} but this process sees no CUDA device (torch "
            f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}, "
            f"CUDA_VISIBLE_DEVICES={_visible()}): set {setting}=cpu or auto, or run it where "
            "a GPU and a CUDA build of torch are present"
        )
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if spec == "cuda" else int(spec.split(":")[1])
    if index >= count:
        raise DeviceError(
            f"{setting}={spec} but this process sees {count} CUDA device(s) (cuda:0 to "
            f"cuda:{count - 1}): set {setting} to one of them, or to cuda or auto"
        )
    return torch.device("cuda", index)


def check_precision(precision: str, device: torch.device, *, setting: str) -> Precision:
    """`precision` if `device` can compute in it, else DeviceError."""
    if precision not in PRECISIONS:
        raise DeviceError(f"{setting}={precision!r}: set one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError(
            f"{setting}=bf16 but {describe(device)} cannot compute in bfloat16 (it needs an "
            f"Ampere or newer GPU): set {setting}=fp32"
        )
    return "bf16" if precision == "bf16" else "fp32"


def autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """The forward pass's autocast context: bfloat16 matrix products under ``bf16``,
    nothing under ``fp32``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def describe(device: torch.device) -> str:
    """The device as the model card and the training record name it: ``cpu``, or
    ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    if device.type != "cuda":
        return str(device.type)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def allocated_bytes(device: torch.device) -> int:
    """Bytes the CUDA caching allocator holds for tensors on `device` (0 on the CPU, where
    the process's memory is the operating system's to count)."""
    if device.type != "cuda":
        return 0
    return int(torch.cuda.memory_allocated(device))


def _visible() -> str:
    import os

    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
