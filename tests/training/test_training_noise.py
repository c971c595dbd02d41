from __future__ import annotations

import torch

from privet.training.noise import SecureRandom, secure_gaussian
from privet.training.privacy import poisson_batch


def test_secure_gaussian_has_the_right_moments() -> None:
    rng = SecureRandom()
    x = secure_gaussian(rng, 2.0, torch.empty(200_000))
    assert x.dtype == torch.float32
    assert abs(x.mean().item()) < 0.03
    assert abs(x.std().item() - 2.0) < 0.03
    u = rng.uniform(100_000)
    assert 0.0 < u.min().item() and u.max().item() < 1.0
    assert abs(u.mean().item() - 0.5) < 0.01


def test_two_secure_generators_differ() -> None:
    a = SecureRandom().standard_normal(16)
    b = SecureRandom().standard_normal(16)
    assert not torch.equal(a, b)


def test_poisson_batch_rate() -> None:
    gen = torch.Generator().manual_seed(0)
    sizes = [len(poisson_batch(1000, 0.1, generator=gen)) for _ in range(50)]
    assert 90 < sum(sizes) / len(sizes) < 110
    secure = [len(poisson_batch(1000, 0.1, secure_rng=SecureRandom())) for _ in range(50)]
    assert 90 < sum(secure) / len(secure) < 110
