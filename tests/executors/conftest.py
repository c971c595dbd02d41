"""Fixtures for executor tests: a local Ray instance (2 CPUs) started by the tests, a tiny
pinned BERT, and the job fixtures of tests/jobs (project, engineer, dataset version)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.datasets.conftest import WORDS
from tests.jobs.conftest import (  # noqa: F401  (fixtures)
    approver,
    dataset_version,
    engineer,
    job_settings,
    project,
    tiny_model,
)

ray = pytest.importorskip("ray")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """`ray.init(num_cpus=2)` on this machine, shut down after the session."""
    os.environ.setdefault("RAY_DISABLE_DOCKER_CPU_WARNING", "1")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            namespace="privet-tests",
        )
    yield ray
    ray.shutdown()


def labelled(n: int, *, seed: int = 3) -> Any:
    from privet.training.data import LabelledTexts

    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = WORDS[:12] if label else WORDS[12:]
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 10))))
        labels.append(str(label))
    return LabelledTexts(texts, labels)
