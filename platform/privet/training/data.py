"""In-memory texts and labels → tokenized tensors, ready for per-sample gradients.

Decrypted data stays in the worker's memory: nothing here touches the disk.

Every example carries its own contiguous `position_ids` and `token_type_ids`. BERT
otherwise broadcasts a `[1, L]` buffer, and Opacus then computes per-sample gradients of
batch size 1 for the position/token-type embeddings (opacus#841); views made with
`.expand` break ghost clipping ("view size is not compatible"), hence `.repeat`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase


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
    token_type_ids: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, indices: torch.Tensor | Sequence[int]) -> dict[str, torch.Tensor]:
        """Rows `indices`, trimmed to their longest sequence; all tensors contiguous."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        mask = self.attention_mask[idx]
        length = max(1, int(mask.sum(dim=1).max().item())) if len(idx) else 1
        return {
            "input_ids": self.input_ids[idx, :length].contiguous(),
            "attention_mask": mask[:, :length].contiguous(),
            "token_type_ids": self.token_type_ids[idx, :length].contiguous(),
            "position_ids": self.position_ids[idx, :length].contiguous(),
            "labels": self.labels[idx].contiguous(),
        }


def encode(
    data: LabelledTexts,
    tokenizer: PreTrainedTokenizerBase,
    *,
    label_names: Sequence[str],
    max_length: int,
) -> EncodedDataset:
    """Tokenize to `max_length` (truncate and pad) with explicit per-example ids."""
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
    n, length = input_ids.shape
    return EncodedDataset(
        input_ids=input_ids,
        attention_mask=enc["attention_mask"].contiguous(),
        token_type_ids=torch.zeros((n, length), dtype=torch.long),
        position_ids=torch.arange(length, dtype=torch.long).repeat(n, 1),
        labels=torch.tensor([index[str(lab)] for lab in data.labels], dtype=torch.long),
    )
