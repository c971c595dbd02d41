"""Serving precision (PRIVET_INFERENCE_PRECISION): bf16 autocast gives the labels fp32 gives,
probabilities within a stated bound; the prediction's event and the metrics name the
precision; a value the settings refuse stops `privet serve` at start-up, naming the
variable. On the CPU (torch supports bf16 autocast there; no GPU here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.inference.conftest import PURPOSE, WORDS

GOOD = "paid on time good income low fine approved".split()
BAD = "late bad debt high missed rejected closed never".split()
NEUTRAL = [w for w in WORDS if w not in GOOD + BAD]

LOGIT_TOLERANCE = 0.05
"""Largest |z_bf16 - z_fp32| allowed on a logit. Autocast rounds the inputs of each matrix
product to bfloat16 (8 significant bits: relative error at most 2^-9 ≈ 0.002 per rounding)
and accumulates in fp32. The tiny model has 2 layers of 8 products (Q, K, V, QK^T, the
attention-weighted sum, the attention output, the two feed-forward ones) plus the pooler
and the head: 18 roundings, whose independent errors add up to about sqrt(18) * 0.002 ≈
0.009 of a logit's size. The trained logits here are about 2 units (printed), so |Δz| is
about 0.03 at most: 0.05 holds that with margin, and an fp32 forward that autocast did
not reach (Δz = 0) or a bf16 model (weights rounded too: errors ~ 2^-8 on every weight)
is told apart by the printed figures."""

TOLERANCE = 0.0125
"""Largest |p_bf16 - p_fp32| allowed: a two-class softmax moves by at most |Δ(z1 - z0)| / 4
(the logistic's slope is ≤ 1/4), so at most 2 * LOGIT_TOLERANCE / 4 = 0.025 in the worst
case and half that for the error of the analysis above (0.0125); confident predictions move
far less (near 0 or 1 the slope is ~ p(1 - p)). A softmax computed in bf16 instead of fp32
is caught by the check that the probabilities sum to 1 within 1e-5 (bf16 rounds each to 8
bits: sums off by up to ~ 0.004)."""


def _texts(n: int, seed: int) -> tuple[list[str], list[int]]:
    import random

    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = [*rng.sample(BAD if label else GOOD, 3), rng.choice(NEUTRAL)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


STEPS = 60


@pytest.fixture(scope="module")
def trained(tiny_base: Any) -> Any:
    """The tiny BERT fine-tuned (plain fp32 SGD, a few seconds) to separate two kinds of
    text, so its probabilities are far from 0.5 as a served model's are: a random head
    would give near-ties whose labels any rounding flips."""
    import torch

    from privet.training.catalog import load_base_model

    torch.manual_seed(0)
    loaded = load_base_model(tiny_base.name, num_labels=2, seed=0)
    model, tokenizer = loaded.model.train(), loaded.tokenizer
    texts, labels = _texts(64, seed=1)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    batch.pop("token_type_ids", None)
    target = torch.tensor(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(**batch).logits, target)
        loss.backward()
        optimizer.step()
    return loaded


def test_bf16_serving_gives_the_fp32_labels(trained: Any) -> None:
    from privet.inference.classifier import Classifier

    fp32 = Classifier(trained.model, trained.tokenizer, ["accept", "reject"], max_length=32)
    bf16 = Classifier(
        trained.model, trained.tokenizer, ["accept", "reject"], max_length=32, precision="bf16"
    )
    texts, truth = _texts(80, seed=2)  # texts not trained on
    a, b = fp32.predict(texts), bf16.predict(texts)
    learned = sum(s.best == t for s, t in zip(a, truth, strict=True)) / len(truth)
    assert learned >= 0.9, learned  # the model learned the task: its labels mean something
    assert [s.best for s in b] == [s.best for s in a]
    diffs = [
        abs(x - y)
        for sa, sb in zip(a, b, strict=True)
        for x, y in zip(sa.probabilities, sb.probabilities, strict=True)
    ]
    z32, z16 = _logits(fp32, texts), _logits(bf16, texts)
    dz = (z16 - z32).abs().max().item()
    print(
        f"max |p_bf16 - p_fp32| = {max(diffs):.6f}, max |z_bf16 - z_fp32| = {dz:.5f}, "
        f"max |z| = {z32.abs().max().item():.2f}, over {len(texts)} texts"
    )
    assert max(diffs) <= TOLERANCE
    assert 0 < dz <= LOGIT_TOLERANCE  # the bf16 forward really ran in bf16, within the bound
    assert all(abs(sum(s.probabilities) - 1) < 1e-5 for s in b)  # an fp32 softmax


def _logits(classifier: Any, texts: list[str]) -> Any:
    """The logits of the classifier's own forward pass (its device, its precision), in
    fp32: what ``Classifier.forward`` turns into probabilities."""
    import torch

    from privet.training.device import autocast

    batch = classifier.encode(texts)
    inputs = {k: v for k, v in batch.items() if k in classifier.inputs}
    with torch.inference_mode(), autocast(classifier.device, classifier.precision):
        return classifier.model(**inputs).logits.float()


@pytest.fixture
def bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    from privet.config import clear_settings_caches

    monkeypatch.setenv("PRIVET_INFERENCE_PRECISION", "bf16")
    clear_settings_caches()


def _predict(client: Any, caller: Any, project: str, paths: Any) -> Any:
    body = {"items": [{"text": "late payment high debt"}], "purpose": PURPOSE}
    r = client.post(paths.predict(project, "risk", 1), json=body, headers=caller.headers)
    assert r.status_code == 200, r.text
    return r.json()["predictions"][0]


def test_events_and_metrics_name_the_precision(
    bf16: None, client: Any, make_caller: Any, project: str, make_version: Any, paths: Any, events
) -> None:
    make_version(project)
    caller = make_caller("predictor", project)
    _predict(client, caller, project, paths)
    (made,) = events("prediction.made")
    assert made["details"]["precision"] == "bf16"
    text = client.get("/metrics").text
    assert re.search(r'^privet_inference_precision\{precision="bf16"\} 1\.0$', text, re.M)
    assert re.search(r'^privet_inference_precision\{precision="fp32"\} 0\.0$', text, re.M)


def test_fp32_is_the_default_and_is_named(
    client: Any, make_caller: Any, project: str, make_version: Any, paths: Any, events
) -> None:
    make_version(project)
    _predict(client, make_caller("predictor", project), project, paths)
    (made,) = events("prediction.made")
    assert made["details"]["precision"] == "fp32"


@pytest.fixture
def process_logging() -> Iterator[None]:
    """`privet serve` configures the process's logging (a JSON handler on the stderr of
    the moment, here the runner's) before it refuses: put the root logger back, so that
    the later tests' output is only theirs."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("value", ["fp16", "BF16", "int8", ""])
def test_serve_refuses_a_precision_it_does_not_know(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, process_logging: None
) -> None:
    from typer.testing import CliRunner

    from privet.cli.main import app as cli_app
    from privet.config import clear_settings_caches

    monkeypatch.setenv("PRIVET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PRIVET_INFERENCE_PRECISION", value)
    clear_settings_caches()
    res = CliRunner().invoke(cli_app, ["serve", "--no-worker"])
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert f"PRIVET_INFERENCE_PRECISION={value!r}" in text, text
    assert "'fp32' or 'bf16'" in text
    assert not (tmp_path / "home").exists()  # refused before anything was written
