"""Model families: what differs between BERT-like encoders, in one table (not if-chains).

Every place that builds inputs for a model, reads its usable length or decides whether it
can be trained with per-sample gradients asks the family of the model's `model_type`:

- **position ids.** Training passes explicit, contiguous per-example position ids (Opacus
  otherwise sees a broadcast `[1, L]` buffer and computes per-sample gradients of batch 1
  for the position embeddings, opacus#841; `.repeat`, not `.expand`, for ghost clipping).
  They must be the ids the stock model would compute, or the served logits would differ
  from a reload with stock transformers: BERT, DistilBERT, DeBERTa-v2 and ELECTRA count
  from 0; RoBERTa counts real tokens from `padding_idx + 1` and gives padding `padding_idx`
  (so it also has `padding_idx + 1` fewer usable positions than `max_position_embeddings`).
- **token type ids.** DistilBERT has none (its forward refuses the argument).
- **pooling.** `cls` is the family's own sequence-classification head; `mean` (masked mean
  of the last hidden states, privet.training.pooling) is built for BERT only.
- **per-sample gradients.** A family, or a configuration of one, that privet cannot train
  with DP is refused when it is registered, with the reason (`untrainable`).

Imports nothing heavy: the gateway reads it when a base model is registered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


class FamilyError(ValueError):
    """A model family privet does not support, or a configuration it cannot train."""


def _no_offset(config: Mapping[str, Any]) -> int:
    return 0


def _after_padding(config: Mapping[str, Any]) -> int:
    """RoBERTa: positions of real tokens start at padding_idx + 1 (= pad_token_id + 1)."""
    return int(config.get("pad_token_id", 1)) + 1


def _deberta_untrainable(config: Mapping[str, Any]) -> str | None:
    if config.get("relative_attention", False):
        return (
            "DeBERTa-v2 with relative_attention reads its relative position embeddings "
            "(rel_embeddings) as a weight matrix inside attention, not through an "
            "Embedding call, so per-sample gradients (Opacus hooks, ghost clipping and "
            "privet's book-keeping) cannot be computed for it"
        )
    return None


@dataclass(frozen=True)
class ModelFamily:
    """One `model_type`: the quirks the trainer, the server and the registry need."""

    model_type: str
    label: str
    token_type_ids: bool = True
    poolings: tuple[str, ...] = ("cls",)
    position_offset: Callable[[Mapping[str, Any]], int] = _no_offset
    padding_position: bool = False
    """Padding gets position `offset - 1` (RoBERTa's padding_idx) instead of its index."""
    untrainable: Callable[[Mapping[str, Any]], str | None] = lambda config: None
    """Why this configuration cannot be trained with per-sample gradients (None: it can)."""

    def inputs(self) -> tuple[str, ...]:
        """The model inputs this family's forward accepts (of MODEL_INPUTS)."""
        return tuple(n for n in MODEL_INPUTS if n != "token_type_ids" or self.token_type_ids)

    def usable_positions(self, config: Mapping[str, Any]) -> int:
        """Tokens a sequence may hold (RoBERTa loses padding_idx + 1 of them)."""
        return int(config.get("max_position_embeddings", 512)) - self.position_offset(config)

    def position_ids(self, attention_mask: torch.Tensor, config: Mapping[str, Any]) -> torch.Tensor:
        """Contiguous per-example position ids equal to the stock model's own (right padding)."""
        import torch

        n, length = attention_mask.shape
        offset = self.position_offset(config)
        ids = torch.arange(offset, offset + length, dtype=torch.long).repeat(n, 1)
        if self.padding_position:
            ids = torch.where(attention_mask.bool(), ids, torch.full_like(ids, offset - 1))
        return ids.contiguous()

    def check_trainable(self, config: Mapping[str, Any], *, pooling: str) -> None:
        """Refuse a configuration or pooling privet cannot train (FamilyError, with why)."""
        if pooling not in self.poolings:
            raise FamilyError(
                f"{self.label} models support pooling {list(self.poolings)}, not {pooling!r} "
                "(mean pooling is built for BERT encoders)"
            )
        reason = self.untrainable(config)
        if reason:
            raise FamilyError(f"{self.label} cannot be trained with DP here: {reason}")


FAMILIES: dict[str, ModelFamily] = {
    f.model_type: f
    for f in (
        ModelFamily("bert", "BERT", poolings=("cls", "mean")),
        ModelFamily("roberta", "RoBERTa", position_offset=_after_padding, padding_position=True),
        ModelFamily("distilbert", "DistilBERT", token_type_ids=False),
        ModelFamily("deberta-v2", "DeBERTa-v2", untrainable=_deberta_untrainable),
        ModelFamily("electra", "ELECTRA"),
    )
}
"""The families with tiny-config tests (tests/training/test_training_families.py)."""


def family_for(model_type: str) -> ModelFamily:
    """The family of a `model_type`, or FamilyError naming the supported ones."""
    family = FAMILIES.get(model_type)
    if family is None:
        raise FamilyError(
            f"model_type {model_type!r} is not a supported family (supported: {sorted(FAMILIES)})"
        )
    return family


def family_of(model: Any) -> ModelFamily:
    """The family of a built model (its config's model_type)."""
    return family_for(str(model.config.model_type))


def config_dict(model: Any) -> dict[str, Any]:
    """A built model's config as the plain mapping the family functions read."""
    return dict(model.config.to_dict())
