"""The Opacus engine: per-sample clipping, noise once per logical step, empty batches."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from privet.training.catalog import Catalog, load_base_model
from privet.training.data import EncodedDataset, LabelledTexts, encode
from privet.training.privacy import PrivateEngine, poisson_batch, split_physical
from privet.training.strategies import Strategy, apply_strategy


def _setup(
    catalog: Catalog, texts: LabelledTexts, strategy: str = "full", name: str = "tiny"
) -> tuple[nn.Module, EncodedDataset]:
    loaded = load_base_model(name, num_labels=2, seed=3, catalog=catalog)
    apply_strategy(loaded.model, Strategy.parse(strategy))
    enc = encode(texts, loaded.tokenizer, label_names=["neg", "pos"], max_length=12)
    return loaded.model, enc


def _private(model: nn.Module, *, lr: float, **engine: Any) -> PrivateEngine:
    """A PrivateEngine over plain SGD (learning rate ``lr``) on the trainable parameters."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    return PrivateEngine(model, opt, **engine)


def _crafted(enc: EncodedDataset, n: int) -> dict[str, torch.Tensor]:
    """The first `n` rows, with every other label flipped so gradient norms spread out."""
    batch = enc.batch(range(n))
    batch["labels"][::2] = 1 - batch["labels"][::2]
    return batch


def _manual_clipped_mean(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    clip: float,
    offsets: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Per-example gradients one at a time with plain autograd, clipped, summed, / B; with
    `offsets`, of the logit-adjusted loss CE(z + offsets, y) written out by hand."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    norms = []
    b = len(batch["labels"])
    for i in range(b):
        model.zero_grad(set_to_none=True)
        one = {k: v[i : i + 1] for k, v in batch.items()}
        labels = one.pop("labels")
        logits = model(**one).logits
        if offsets is None:
            loss = nn.functional.cross_entropy(logits, labels)
        else:
            z = logits[0] + offsets
            loss = torch.logsumexp(z, dim=0) - z[labels[0]]
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in params.items()}
        norm = torch.sqrt(sum((g**2).sum() for g in grads.values())).item()
        norms.append(norm)
        factor = min(1.0, clip / (norm + 1e-6))
        for n in total:
            total[n] += grads[n] * factor
    model.zero_grad(set_to_none=True)
    return {n: t / b for n, t in total.items()}, norms


@pytest.mark.parametrize("mode", ["bk", "ghost", "hooks"])
def test_the_engine_clips_the_logit_adjusted_loss_and_stays_within_c(
    tiny_catalog: Catalog, train_texts: LabelledTexts, mode: str
) -> None:
    """With logit adjustment each example's gradient is that of CE(z + tau·log prior, y),
    clipped to C like any other: the update is their clipped mean, of norm at most C (the DP
    sensitivity is unchanged), and it differs from the unadjusted one (the offsets act)."""
    model, enc = _setup(tiny_catalog, train_texts, name="tiny-mean")
    batch = _crafted(enc, 8)
    with torch.no_grad():
        model.classifier.weight.mul_(50.0)
    offsets = torch.log(torch.tensor([0.9, 0.1]))
    _, norms = _manual_clipped_mean(copy.deepcopy(model), batch, 1.0, offsets)
    clip = sorted(norms)[len(norms) // 2] * 0.999  # half the examples get clipped
    assert min(norms) < clip < max(norms)
    expected, _ = _manual_clipped_mean(copy.deepcopy(model), batch, clip, offsets)
    plain, _ = _manual_clipped_mean(copy.deepcopy(model), batch, clip)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    engine = _private(
        model,
        lr=1.0,
        noise_multiplier=0.0,
        max_grad_norm=clip,
        sample_rate=0.5,
        expected_batch_size=8,
        grad_sample_mode=mode,
        logit_adjustment=offsets,
    )
    engine.step([{k: v[c] for k, v in batch.items()} for c in split_physical(torch.arange(8), 3)])
    engine.close()
    update = {n: before[n] - p.detach() for n, p in model.named_parameters()}
    flat = torch.cat([u.flatten() for u in update.values()])
    assert flat.norm().item() <= clip + 1e-6
    for name, exp in expected.items():
        torch.testing.assert_close(update[name], exp, rtol=2e-3, atol=2e-6, msg=name)
    name = "classifier.weight"
    assert not torch.allclose(expected[name], plain[name], rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize(
    ("mode", "physical", "model_name"),
    [(m, p, "tiny") for m in ("bk", "ghost", "hooks") for p in (8, 1, 3)]
    + [("bk", 3, "tiny-mean"), ("ghost", 8, "tiny-mean")],
)
def test_clipping_bounds_per_sample_gradients(
    tiny_catalog: Catalog, train_texts: LabelledTexts, mode: str, physical: int, model_name: str
) -> None:
    model, enc = _setup(tiny_catalog, train_texts, name=model_name)
    batch = _crafted(enc, 8)
    with torch.no_grad():  # make the head confidently wrong on half: large gradients
        model.classifier.weight.mul_(50.0)
    reference = copy.deepcopy(model)
    _, norms = _manual_clipped_mean(copy.deepcopy(model), batch, 1.0)
    clip = sorted(norms)[len(norms) // 2] * 0.999  # half the examples get clipped
    assert min(norms) < clip < max(norms)
    expected, _ = _manual_clipped_mean(reference, batch, clip)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    engine = _private(
        model,
        lr=1.0,
        noise_multiplier=0.0,
        max_grad_norm=clip,
        sample_rate=0.5,
        expected_batch_size=8,
        grad_sample_mode=mode,
    )
    idx = torch.arange(8)
    engine.step([{k: v[c] for k, v in batch.items()} for c in split_physical(idx, physical)])
    engine.close()
    update = {n: before[n] - p.detach() for n, p in model.named_parameters()}
    flat = torch.cat([u.flatten() for u in update.values()])
    assert flat.norm().item() <= clip + 1e-6  # the mean of clipped gradients
    for name, exp in expected.items():
        torch.testing.assert_close(update[name], exp, rtol=2e-3, atol=2e-6, msg=name)
    # Frozen-by-nothing: every trainable parameter moved or had zero gradient.
    assert "_module." not in "".join(model.state_dict())


def test_noise_is_added_once_per_logical_step(
    tiny_catalog: Catalog, train_texts: LabelledTexts
) -> None:
    model, enc = _setup(tiny_catalog, train_texts, strategy="top-1")
    engine = _private(
        model,
        lr=0.1,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        sample_rate=0.2,
        expected_batch_size=40,
        generator=torch.Generator().manual_seed(0),
    )
    calls = {"noise": 0, "inner_step": 0}
    real_add_noise = engine.optimizer.add_noise
    real_step = engine.optimizer.original_optimizer.step

    def counting_add_noise() -> None:
        calls["noise"] += 1
        real_add_noise()

    def counting_step(*a: object, **k: object) -> object:
        calls["inner_step"] += 1
        return real_step(*a, **k)

    engine.optimizer.add_noise = counting_add_noise  # type: ignore[method-assign]
    engine.optimizer.original_optimizer.step = counting_step  # type: ignore[method-assign]
    gen = torch.Generator().manual_seed(1)
    physical_batches = 0
    for _ in range(3):
        logical = poisson_batch(len(enc), 0.2, generator=gen)
        chunks = split_physical(logical, 8)
        assert len(chunks) >= 3  # several physical batches per logical step
        physical_batches += len(chunks)
        engine.step([enc.batch(c) for c in chunks])
    engine.close()
    assert physical_batches >= 9
    assert calls == {"noise": 3, "inner_step": 3}
    assert engine.accountant.history == [(1.0, 0.2, 3)]


def test_noise_changes_the_update_and_sigma_zero_is_deterministic(
    tiny_catalog: Catalog, train_texts: LabelledTexts
) -> None:
    def run(sigma: float, seed: int) -> torch.Tensor:
        model, enc = _setup(tiny_catalog, train_texts, strategy="head")
        engine = _private(
            model,
            lr=1.0,
            noise_multiplier=sigma,
            max_grad_norm=1.0,
            sample_rate=0.1,
            expected_batch_size=16,
            generator=torch.Generator().manual_seed(seed),
        )
        engine.step([enc.batch(range(8)), enc.batch(range(8, 16))])
        engine.close()
        return model.classifier.weight.detach().clone()

    assert torch.equal(run(0.0, 0), run(0.0, 1))
    assert torch.equal(run(1.0, 0), run(1.0, 0))  # reproducible under a seed
    assert not torch.equal(run(1.0, 0), run(1.0, 1))
    # noise std on the mean gradient is sigma*C/B: compare against sigma=0
    diff = run(1.0, 0) - run(0.0, 0)
    assert 0.3 / 16 < diff.std().item() < 3.0 / 16


@pytest.mark.parametrize("mode", ["bk", "ghost", "hooks"])
def test_empty_poisson_batch_is_a_pure_noise_step(
    tiny_catalog: Catalog, train_texts: LabelledTexts, mode: str
) -> None:
    model, enc = _setup(tiny_catalog, train_texts, strategy="head")
    before = model.classifier.weight.detach().clone()
    engine = _private(
        model,
        lr=1.0,
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        sample_rate=0.01,
        expected_batch_size=2,
        grad_sample_mode=mode,
        generator=torch.Generator().manual_seed(0),
    )
    loss, examples = engine.step([])
    assert examples == 0 and loss != loss  # nan
    assert not torch.equal(before, model.classifier.weight)
    assert engine.steps == 1 and engine.accountant.history == [(1.0, 0.01, 1)]
    engine.step([enc.batch(range(4))])  # and training continues normally
    engine.close()
