"""Randomness for DP-SGD: reproducible (seeded) or cryptographically secure.

Opacus's own `secure_mode` needs `torchcsprng`, which has no builds for current torch;
this module supplies the same guarantee without it. `SecureRandom` draws from AES-256-CTR
keyed from `os.urandom` (a standard CSPRNG construction), and `secure_gaussian` sums four
Box-Muller samples and halves them, the mitigation Opacus uses against floating-point
attacks on Gaussian sampling (Mironov 2012; arXiv 2107.10138, 2112.05307).
"""

from __future__ import annotations

import math
import os

import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_CHUNK = 1 << 20
_MANTISSA = (1 << 53) - 1


class SecureRandom:
    """A CSPRNG (AES-256-CTR over a fresh random key) producing torch tensors."""

    def __init__(self) -> None:
        cipher = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16)))
        self._stream = cipher.encryptor()

    def random_bytes(self, n: int) -> bytes:
        return self._stream.update(bytes(n))

    def uniform(self, n: int) -> torch.Tensor:
        """`n` float64 values uniform in the open interval (0, 1), 53 random bits each."""
        if n == 0:
            return torch.empty(0, dtype=torch.float64)
        raw = torch.frombuffer(bytearray(self.random_bytes(8 * n)), dtype=torch.int64)
        return ((raw & _MANTISSA).to(torch.float64) + 0.5) / float(1 << 53)

    def standard_normal(self, n: int) -> torch.Tensor:
        """`n` float64 standard normals by the Box-Muller transform (both outputs used)."""
        half = (n + 1) // 2
        u1, u2 = self.uniform(half), self.uniform(half)
        radius = torch.sqrt(-2.0 * torch.log(u1))
        angle = (2.0 * math.pi) * u2
        return torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)])[:n]


def secure_gaussian(rng: SecureRandom, std: float, reference: torch.Tensor) -> torch.Tensor:
    """N(0, std²) noise shaped like `reference`, from four CSPRNG samples summed and halved."""
    if std == 0.0:
        return torch.zeros_like(reference)
    n = reference.numel()
    out = torch.empty(n, dtype=torch.float64)
    for start in range(0, n, _CHUNK):
        size = min(_CHUNK, n - start)
        total = rng.standard_normal(size)
        for _ in range(3):
            total += rng.standard_normal(size)
        out[start : start + size] = total * (std / 2.0)
    return out.to(dtype=reference.dtype, device=reference.device).view_as(reference)
