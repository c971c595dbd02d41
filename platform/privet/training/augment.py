"""Augmentation multiplicity (De et al. 2022): K augmented copies of each sampled example.

Under DP an augmented copy is not a new example: the K copies of one example come from
one person's row. So the engine averages the K copies' gradients *before* clipping
(`bookkeeping.BookKeepingClipper.backward(..., copies=K)`): each example still contributes
one clipped gradient of norm at most C, the Poisson sampling is over examples, and the
accounting (ε) is exactly that of K = 1. Only the signal changes: the mean over copies has
less augmentation variance, and augmentation acts as a regulariser.

Cheap text augmentations on *units* (a run of non-space characters, or one CJK character,
so Chinese text without spaces is augmented too), applied in this order to each copy:

- span deletion (rate p): delete one contiguous span of ⌊p·units⌋ units;
- token dropout (rate p): drop each unit independently with probability p;
- word order noise (rate p): swap each adjacent pair with probability p (one left-to-right
  pass; a unit moves at most one place).

Never empty: at least one unit of a non-empty text is kept. Deterministic: the copies come
from a `random.Random` seeded with the run's seed and rank (the augmentation's randomness
is not part of the DP guarantee; sampling and noise are).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from privet.training.data import LabelledTexts, encode

MAX_MULTIPLICITY = 16
"""K copies multiply a step's compute by K: more than 16 is never worth it (De et al. use
up to 16 on images)."""
MAX_RATE = 0.5
"""Above half, an augmented text keeps less than it loses."""
DEFAULT_RATES = (0.1, 0.1, 0.1)
"""(token dropout, span deletion, word order) the recipe uses when only K is set."""

MEASURED = (
    "K copies cost K times the compute, and K = 4 is not yet measured to help on the "
    "calibration benchmark"
)
"""What the calibration benchmark measured with K = 4 (the recipe's reason to keep K = 1)."""

_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_UNIT = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
_ONE_CJK = re.compile(f"[{_CJK}]")


@dataclass(frozen=True)
class Augmentation:
    """K and the rates of each augmentation (each in [0, MAX_RATE])."""

    multiplicity: int = 1
    token_dropout: float = 0.0
    span_deletion: float = 0.0
    word_order: float = 0.0

    @property
    def changes_text(self) -> bool:
        return any(r > 0 for r in (self.token_dropout, self.span_deletion, self.word_order))

    @property
    def active(self) -> bool:
        """Off (K = 1, no rate): the run is exactly the one without augmentation."""
        return self.multiplicity > 1 or self.changes_text

    def problem(self) -> str | None:
        """Why this augmentation is not allowed (None: it is)."""
        if not 1 <= self.multiplicity <= MAX_MULTIPLICITY:
            return f"augment_multiplicity must be in [1, {MAX_MULTIPLICITY}]"
        for name in ("token_dropout", "span_deletion", "word_order"):
            if not 0.0 <= getattr(self, name) <= MAX_RATE:
                return f"augment_{name} must be in [0, {MAX_RATE}]"
        if self.multiplicity > 1 and not self.changes_text:
            return (
                "augment_multiplicity > 1 needs an augmentation rate above 0: identical copies "
                "cost K times the compute for the same gradient"
            )
        return None


def _units(text: str) -> list[str]:
    return _UNIT.findall(text)


def _join(units: Sequence[str]) -> str:
    out: list[str] = []
    for i, unit in enumerate(units):
        if i and not (_ONE_CJK.fullmatch(unit) and _ONE_CJK.fullmatch(units[i - 1])):
            out.append(" ")
        out.append(unit)
    return "".join(out)


def augment_text(text: str, aug: Augmentation, rng: random.Random) -> str:
    """One augmented copy of `text` (never empty when `text` has a non-space character)."""
    units = _units(text)
    if not aug.changes_text or len(units) < 2:
        return text
    span = min(len(units) - 1, int(aug.span_deletion * len(units)))
    if span > 0:
        start = rng.randrange(len(units) - span + 1)
        units = units[:start] + units[start + span :]
    if aug.token_dropout > 0:
        kept = [u for u in units if rng.random() >= aug.token_dropout]
        units = kept or [units[rng.randrange(len(units))]]
    if aug.word_order > 0:
        i = 0
        while i < len(units) - 1:
            if rng.random() < aug.word_order:
                units[i], units[i + 1] = units[i + 1], units[i]
                i += 1
            i += 1
    return _join(units)


class AugmentedRows:
    """A rank's training rows, served as K augmented copies per example.

    `batch(indices)` returns the rows of `indices` with each example's K copies contiguous
    (example j of the chunk is rows j·K … j·K + K - 1): the layout the clipper's per-example
    mean over copies relies on. Tokenized per batch, with `data.encode`.
    """

    def __init__(
        self,
        data: LabelledTexts,
        aug: Augmentation,
        *,
        tokenizer: PreTrainedTokenizerBase,
        label_names: Sequence[str],
        max_length: int,
        model: torch.nn.Module,
        seed: str,
    ) -> None:
        self.data = data
        self.aug = aug
        self.tokenizer = tokenizer
        self.label_names = list(label_names)
        self.max_length = max_length
        self.model = model
        self.rng = random.Random(seed)  # noqa: S311 (not a secret: see the docstring)

    def __len__(self) -> int:
        return len(self.data.texts)

    def batch(self, indices: torch.Tensor | Sequence[int]) -> dict[str, torch.Tensor]:
        rows = [int(i) for i in torch.as_tensor(indices, dtype=torch.long).tolist()]
        k = self.aug.multiplicity
        texts = [
            augment_text(self.data.texts[i], self.aug, self.rng) for i in rows for _ in range(k)
        ]
        labels = [self.data.labels[i] for i in rows for _ in range(k)]
        encoded = encode(
            LabelledTexts(texts, labels),
            self.tokenizer,
            label_names=self.label_names,
            max_length=self.max_length,
            model=self.model,
        )
        return encoded.batch(range(len(texts)))


def recipe_choices(overrides: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """The auto recipe's (field, value, reason) for augmentation; a caller's field wins."""
    k = int(overrides.get("augment_multiplicity") or 1)
    out: list[tuple[str, Any, str]] = [
        ("augment_multiplicity", 1, f"off: {MEASURED} (training README)")
    ]
    names = ("augment_token_dropout", "augment_span_deletion", "augment_word_order")
    for name, rate in zip(names, DEFAULT_RATES, strict=True):
        if k > 1:
            why = f"{rate:g}: a light edit of each copy, so the K copies differ but keep the label"
            out.append((name, rate, why))
        else:
            out.append((name, 0.0, "off (augment_multiplicity 1)"))
    return out
