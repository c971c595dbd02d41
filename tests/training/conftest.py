"""Tiny BERT base models built in code, and small labelled text sets, for fast tests."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from privet.training.catalog import BaseModelSpec, Catalog, build_tiny_bert
from privet.training.data import LabelledTexts
from privet.training.privacy import PrivateEngine
from privet.training.trainer import TrainingConfig

# The test machine is small and shared: one intra-op thread avoids oversubscription.
torch.set_num_threads(1)

POSITIVE = ["good", "great", "fine", "lovely"]
NEGATIVE = ["bad", "awful", "poor", "dull"]
FILLER = ["the", "a", "movie", "film", "plot", "was", "is", "very"]
WORDS = POSITIVE + NEGATIVE + FILLER

#: The small DP run the trainer's tests start from (``replace`` what a test varies).
TINY_CONFIG = TrainingConfig(
    base_model="tiny",
    strategy="top-1",
    max_length=12,
    epochs=2,
    logical_batch_size=40,
    physical_batch_size=16,
    learning_rate=5e-3,
    target_epsilon=3.0,
    seed=7,
)


def noiseless_step(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], *, clip: float, **engine: Any
) -> dict[str, torch.Tensor]:
    """One DP step without noise at learning rate 1 (SGD) through PrivateEngine: the
    update of each parameter (before - after) is the clipped mean gradient. ``engine``:
    the rest of PrivateEngine's arguments (expected_batch_size, grad_sample_mode, ...)."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    private = PrivateEngine(
        model, opt, noise_multiplier=0.0, max_grad_norm=clip, sample_rate=0.5, **engine
    )
    private.step([batch])
    private.close()
    return {n: before[n] - p.detach() for n, p in model.named_parameters()}


def make_texts(n: int, seed: int = 0) -> LabelledTexts:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        pos = rng.random() < 0.5
        word = rng.choice(POSITIVE if pos else NEGATIVE)
        texts.append(f"the {rng.choice(['movie', 'film', 'plot'])} was very {word}")
        labels.append("pos" if pos else "neg")
    return LabelledTexts(texts, labels)


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory: pytest.TempPathFactory) -> BaseModelSpec:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "tiny", name="tiny", words=WORDS)


@pytest.fixture(scope="session")
def tiny_mean_spec(tmp_path_factory: pytest.TempPathFactory) -> BaseModelSpec:
    """The same tiny BERT read through masked mean pooling (like MiniLM-L6)."""
    return build_tiny_bert(
        tmp_path_factory.mktemp("tiny-mean") / "tiny-mean",
        name="tiny-mean",
        words=WORDS,
        pooling="mean",
    )


@pytest.fixture()
def tiny_catalog(tiny_spec: BaseModelSpec, tiny_mean_spec: BaseModelSpec) -> Catalog:
    catalog = Catalog()
    catalog.register(tiny_spec)
    catalog.register(tiny_mean_spec)
    return catalog


@pytest.fixture()
def tampered_spec(tmp_path: Path) -> BaseModelSpec:
    return build_tiny_bert(tmp_path / "tampered", name="tampered", words=WORDS)


@pytest.fixture(scope="session")
def train_texts() -> LabelledTexts:
    return make_texts(200, seed=1)


@pytest.fixture(scope="session")
def eval_texts() -> LabelledTexts:
    return make_texts(60, seed=2)
