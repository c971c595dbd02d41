"""Augmentation multiplicity: K copies averaged before clipping, ε unchanged, text edits."""

from __future__ import annotations

import copy
import random
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from privet.training.augment import Augmentation, AugmentedRows, augment_text
from privet.training.catalog import Catalog, load_base_model
from privet.training.data import LabelledTexts, encode
from privet.training.strategies import Strategy, apply_strategy
from privet.training.trainer import ConfigError, train
from tests.training.conftest import TINY_CONFIG, noiseless_step

CONFIG = TINY_CONFIG
AUG = Augmentation(multiplicity=3, token_dropout=0.2, span_deletion=0.2, word_order=0.2)


def _model(catalog: Catalog) -> tuple[nn.Module, object]:
    loaded = load_base_model("tiny", num_labels=2, seed=3, catalog=catalog)
    apply_strategy(loaded.model, Strategy.parse("full"))
    with torch.no_grad():  # a confidently wrong head on some rows: large gradients
        loaded.model.classifier.weight.mul_(50.0)
    for module in loaded.model.modules():  # the reference and the engine: one function
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return loaded.model, loaded.tokenizer


def _step(model: nn.Module, batch: dict[str, torch.Tensor], *, clip: float, copies: int) -> dict:
    """One noiseless bk step with lr 1 on 4 examples: the update is the clipped mean."""
    return noiseless_step(model, batch, clip=clip, expected_batch_size=4, copies=copies)


def _batch(tokenizer: object, texts: list[str], labels: list[str]) -> dict[str, torch.Tensor]:
    enc = encode(
        LabelledTexts(texts, labels),
        tokenizer,  # type: ignore[arg-type]
        label_names=["neg", "pos"],
        max_length=12,
    )
    return enc.batch(range(len(texts)))


TEXTS = ["the movie was very good", "a plot is dull", "the film was bad", "a movie is lovely"]
LABELS = ["pos", "pos", "neg", "neg"]  # two confidently wrong, two right
VARIANTS = [  # a second copy of each example: different words, same label
    "the film is good",
    "plot dull very",
    "the movie was very bad",
    "lovely film",
]


def test_identical_copies_give_the_same_step_as_one(tiny_catalog: Catalog) -> None:
    model, tok = _model(tiny_catalog)
    clip = 0.5
    one = _step(copy.deepcopy(model), _batch(tok, TEXTS, LABELS), clip=clip, copies=1)
    k = 3
    tripled = _batch(
        tok, [t for t in TEXTS for _ in range(k)], [y for y in LABELS for _ in range(k)]
    )
    three = _step(copy.deepcopy(model), tripled, clip=clip, copies=k)
    for name, value in one.items():
        # fp32 sums over 3x the tokens in another order: equal up to rounding
        torch.testing.assert_close(three[name], value, rtol=1e-5, atol=1e-7, msg=name)


def _per_example_grads(model: nn.Module, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    out = []
    for i in range(len(batch["labels"])):
        one = {k: v[i : i + 1] for k, v in batch.items()}
        labels = one.pop("labels")
        loss = nn.functional.cross_entropy(model(**one).logits, labels)
        grads = torch.autograd.grad(loss, params)
        out.append(torch.cat([g.flatten() for g in grads]))
    return out


def _clip(g: torch.Tensor, c: float) -> torch.Tensor:
    return g * min(1.0, c / (float(g.norm()) + 1e-6))


def test_clipping_bounds_each_example_not_each_copy(tiny_catalog: Catalog) -> None:
    """The rule's arithmetic: copies that pull apart (here: the second copy's label flipped,
    which a real augmentation never does) make clip-per-copy and clip-the-mean differ."""
    model, tok = _model(tiny_catalog)
    texts = [t for pair in zip(TEXTS, VARIANTS, strict=True) for t in pair]
    flip = {"pos": "neg", "neg": "pos"}
    labels = [z for y in LABELS for z in (y, flip[y])]
    batch = _batch(tok, texts, labels)
    grads = _per_example_grads(model, batch)
    copies = [(grads[2 * i] + grads[2 * i + 1]) / 2 for i in range(4)]
    clip = 0.5 * min(float(g.norm()) for g in copies)  # every example is clipped
    per_example = sum(_clip(g, clip) for g in copies) / 4
    per_copy = sum(_clip(g, clip) for g in grads) / 8
    assert isinstance(per_example, torch.Tensor) and isinstance(per_copy, torch.Tensor)
    # the two rules really differ here, so the test can tell which one the engine uses
    assert (per_example - per_copy).norm() > 0.05 * per_example.norm()
    update = _step(copy.deepcopy(model), batch, clip=clip, copies=2)
    params = [n for n, p in model.named_parameters() if p.requires_grad]
    flat = torch.cat([update[n].flatten() for n in params])
    torch.testing.assert_close(flat, per_example, rtol=1e-3, atol=1e-6)
    assert flat.norm() <= clip + 1e-6


def test_epsilon_and_schedule_are_those_of_k_1(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    small = replace(CONFIG, epochs=1, logical_batch_size=20)  # few steps: a slow machine
    rows = LabelledTexts(train_texts.texts[:80], train_texts.labels[:80])
    base = train(small, rows, eval_texts, catalog=tiny_catalog)
    cfg = replace(
        small,
        augment_multiplicity=3,
        augment_token_dropout=0.1,
        augment_span_deletion=0.1,
        augment_word_order=0.1,
    )
    aug = train(cfg, rows, eval_texts, catalog=tiny_catalog)
    assert base.privacy is not None and aug.privacy is not None
    assert aug.privacy.epsilon == base.privacy.epsilon
    assert aug.privacy.noise_multiplier == base.privacy.noise_multiplier
    assert aug.privacy.sample_rate == base.privacy.sample_rate
    assert aug.steps == base.steps
    assert aug.weights_sha256 != base.weights_sha256  # the copies did change the updates


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"augment_multiplicity": 2, "augment_word_order": 0.1, "grad_sample_mode": "ghost"}, "bk"),
        ({"augment_multiplicity": 2, "augment_word_order": 0.1, "grad_sample_mode": "hooks"}, "bk"),
        ({"augment_multiplicity": 2}, "needs an augmentation rate above 0"),
        ({"augment_multiplicity": 17, "augment_token_dropout": 0.1}, r"in \[1, 16\]"),
        ({"augment_multiplicity": 0}, r"in \[1, 16\]"),
        ({"augment_word_order": 0.6}, r"augment_word_order must be in \[0, 0.5\]"),
        ({"augment_span_deletion": -0.1}, r"augment_span_deletion must be in"),
    ],
)
def test_bad_augmentation_is_refused(change: dict, rule: str) -> None:
    with pytest.raises(ConfigError, match=rule):
        replace(CONFIG, **change).validate(200)


def test_augmented_rows_keep_each_examples_copies_together(tiny_catalog: Catalog) -> None:
    model, tok = _model(tiny_catalog)
    data = LabelledTexts(TEXTS, LABELS)
    rows = AugmentedRows(
        data, AUG, tokenizer=tok, label_names=["neg", "pos"], max_length=12, model=model, seed="s"
    )  # type: ignore[arg-type]
    batch = rows.batch([2, 0])
    assert batch["labels"].tolist() == [0, 0, 0, 1, 1, 1]
    assert batch["input_ids"].shape[0] == 6


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=80),
    seed=st.integers(0, 2**32),
    rates=st.tuples(*[st.floats(0.0, 0.5) for _ in range(3)]),
)
def test_augmented_text_is_never_empty_and_seeded(
    text: str, seed: int, rates: tuple[float, float, float]
) -> None:
    aug = Augmentation(2, *rates)
    out = augment_text(text, aug, random.Random(seed))
    assert out == augment_text(text, aug, random.Random(seed))
    if text.strip():
        assert out.strip()
    else:
        assert out == text


def test_augmentations_edit_words_and_cjk() -> None:
    rng = random.Random(1)
    words = "one two three four five six seven eight nine ten"
    heavy = Augmentation(2, token_dropout=0.5, span_deletion=0.5, word_order=0.5)
    outs = {augment_text(words, heavy, rng) for _ in range(20)}
    assert len(outs) > 10 and all(set(o.split()) <= set(words.split()) for o in outs)
    assert all(len(o.split()) < 10 for o in outs)  # span deletion always removes ⌊p·n⌋
    shuffled = augment_text(words, Augmentation(2, word_order=0.5), random.Random(3))
    assert sorted(shuffled.split()) == sorted(words.split()) and shuffled != words
    cjk = augment_text("外卖很好吃送得也快", Augmentation(2, token_dropout=0.3), random.Random(2))
    assert cjk and " " not in cjk and len(cjk) < 9
    assert augment_text(words, Augmentation(), rng) == words  # off: unchanged
