"""In-memory texts and labels → tokenized tensors, ready for per-sample gradients.

Decrypted data stays in the worker's memory: nothing here touches the disk.

Every example carries its own contiguous `position_ids` (and `token_type_ids`, in the
families that have them). BERT otherwise broadcasts a `[1, L]` buffer, and Opacus then
computes per-sample gradients of batch size 1 for the position/token-type embeddings
(opacus#841); views made with `.expand` break ghost clipping ("view size is not
compatible"), hence `.repeat`. Which ids a family takes, and where its positions start
(RoBERTa: after the padding index), is privet.training.families's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from privet.training.families import FAMILIES, config_dict, family_of


class DataError(ValueError):
    """The training or evaluation data cannot be used as given."""


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with string labels, as they come out of a dataset version."""

    texts: Sequence[str]
    labels: Sequence[str]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise DataError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if not self.texts:
            raise DataError("no examples")


@dataclass(frozen=True)
class SoftTargets:
    """A teacher's label distributions (rows sum to 1, at `temperature`) over the texts of
    a distillation run, in the run's label order."""

    probabilities: torch.Tensor
    temperature: float


def label_names_for(*datasets: LabelledTexts) -> list[str]:
    """Stable label order (sorted), so index ↔ label is reproducible across runs."""
    names = sorted({str(label) for d in datasets for label in d.labels})
    if len(names) < 2:
        raise DataError(f"need at least two distinct labels, found {names}")
    return names


@dataclass
class EncodedDataset:
    """Padded token tensors and label indices for one split."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None
    """None for families without token types (DistilBERT)."""
    position_ids: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, indices: torch.Tensor | Sequence[int]) -> dict[str, torch.Tensor]:
        """Rows `indices`, trimmed to their longest sequence; all tensors contiguous."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        mask = self.attention_mask[idx]
        length = max(1, int(mask.sum(dim=1).max().item())) if len(idx) else 1
        batch = {
            "input_ids": self.input_ids[idx, :length].contiguous(),
            "attention_mask": mask[:, :length].contiguous(),
            "position_ids": self.position_ids[idx, :length].contiguous(),
            "labels": self.labels[idx].contiguous(),
        }
        if self.token_type_ids is not None:
            batch["token_type_ids"] = self.token_type_ids[idx, :length].contiguous()
        return batch


def encode(
    data: LabelledTexts,
    tokenizer: PreTrainedTokenizerBase,
    *,
    label_names: Sequence[str],
    max_length: int,
    model: Any = None,
) -> EncodedDataset:
    """Tokenize to `max_length` (truncate and pad) with explicit per-example ids, built
    for `model`'s family (None: BERT's) and capped at the positions the model has."""
    family = FAMILIES["bert"] if model is None else family_of(model)
    config = {} if model is None else config_dict(model)
    if model is not None:
        max_length = min(max_length, family.usable_positions(config))
    index = {name: i for i, name in enumerate(label_names)}
    unknown = sorted({str(lab) for lab in data.labels} - set(index))
    if unknown:
        raise DataError(f"labels not seen in training: {unknown[:10]}")
    enc = tokenizer(
        list(data.texts),
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    input_ids = enc["input_ids"].contiguous()
    mask = enc["attention_mask"].contiguous()
    n, length = input_ids.shape
    return EncodedDataset(
        input_ids=input_ids,
        attention_mask=mask,
        token_type_ids=torch.zeros((n, length), dtype=torch.long)
        if family.token_type_ids
        else None,
        position_ids=family.position_ids(mask, config),
        labels=torch.tensor([index[str(lab)] for lab in data.labels], dtype=torch.long),
    )
