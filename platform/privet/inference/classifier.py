"""A loaded classifier: forward passes for batches, and occlusion attributions.

Built from safetensors bytes held in memory (never a file) on a verified catalog base
model; run in ``torch.inference_mode`` in eval mode (no dropout, deterministic), in fp32 or
under bf16 autocast (``precision``: training/device.py; the softmax is fp32 either way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from privet.training.catalog import Catalog, load_finetuned
from privet.training.device import Precision, autocast
from privet.training.families import config_dict, family_of


def serving_catalog() -> Catalog:
    """The process catalog with PRIVET_JOBS_EXTRA_CATALOG's base models (the same
    allow-list the workers train on)."""
    from privet.jobs.catalog import ensure_catalog

    return ensure_catalog()


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads (process-wide); 0 leaves torch's default."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@dataclass
class Scores:
    """Class probabilities of one text, in label order."""

    probabilities: list[float]

    @property
    def best(self) -> int:
        return max(range(len(self.probabilities)), key=self.probabilities.__getitem__)


class Classifier:
    """One model version in memory: model, tokenizer and label names."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        label_names: Sequence[str],
        *,
        max_length: int,
        version_id: str = "",
        device: torch.device | None = None,
        precision: Precision = "fp32",
    ) -> None:
        self.device = device if device is not None else torch.device("cpu")
        self.precision: Precision = precision
        self.model = model.eval().to(self.device)
        self.tokenizer = tokenizer
        self.label_names = list(label_names)
        family = family_of(model)
        self.max_length = min(max_length, family.usable_positions(config_dict(model)))
        # the stock model computes its own position ids (privet's training passes the same)
        self.inputs = frozenset(family.inputs()) - {"position_ids"}
        self.version_id = version_id
        self.nbytes: int = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
            b.numel() * b.element_size() for b in model.buffers()
        )
        self.device_bytes = self.nbytes if self.device.type == "cuda" else 0
        """What the weights hold of the GPU's memory (0 on the CPU)."""

    @classmethod
    def from_weights(
        cls,
        weights: bytes,
        *,
        base_model: str,
        label_names: Sequence[str],
        max_length: int,
        version_id: str = "",
        catalog: Catalog | None = None,
        device: torch.device | None = None,
        precision: Precision = "fp32",
    ) -> Classifier:
        loaded = load_finetuned(
            weights,
            base_model=base_model,
            num_labels=len(label_names),
            catalog=catalog or serving_catalog(),
        )
        return cls(
            loaded.model,
            loaded.tokenizer,
            label_names,
            max_length=max_length,
            version_id=version_id,
            device=device,
            precision=precision,
        )

    def encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return dict(
            self.tokenizer(
                list(texts),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Class probabilities for an encoded batch (computed on the model's device in its
        precision, the whole batch in one forward pass; returned on the CPU in fp32)."""
        inputs = {k: v.to(self.device) for k, v in batch.items() if k in self.inputs}
        with torch.inference_mode(), autocast(self.device, self.precision):
            logits = self.model(**inputs).logits
            return torch.softmax(logits.float(), dim=-1).cpu()

    def predict(self, texts: Sequence[str]) -> list[Scores]:
        if not texts:
            return []
        probs = self.forward(self.encode(texts))
        return [Scores([float(x) for x in row]) for row in probs.tolist()]

    def occlusion(
        self, text: str, label_index: int, *, max_tokens: int, chunk: int = 64
    ) -> tuple[float, list[tuple[str, int | None, int | None, float]]]:
        """Token attributions by occlusion: the drop in the label's probability when each
        token (special tokens aside) is replaced by the mask token (else [UNK]).

        Returns the label's probability on the intact text and, per token, (token,
        character start, end, attribution). Only the first ``max_tokens`` tokens are
        occluded; the rest keep attribution 0.
        """
        tok = self.tokenizer
        kwargs: dict[str, Any] = {
            "truncation": True,
            "max_length": self.max_length,
            "return_tensors": "pt",
            "return_special_tokens_mask": True,
        }
        try:
            enc = tok([text], return_offsets_mapping=True, **kwargs)
            offsets = enc.pop("offset_mapping")[0].tolist()
        except (NotImplementedError, ValueError):  # slow tokenizers have no offsets
            enc = tok([text], **kwargs)
            offsets = None
        special = enc.pop("special_tokens_mask")[0].tolist()
        batch = dict(enc)
        ids = batch["input_ids"][0]
        base = float(self.forward(batch)[0, label_index])
        baseline_id = tok.mask_token_id if tok.mask_token_id is not None else tok.unk_token_id
        positions = [i for i, s in enumerate(special) if not s][:max_tokens]
        drops: dict[int, float] = {}
        for start in range(0, len(positions), chunk):
            part = positions[start : start + chunk]
            variants = ids.repeat(len(part), 1)
            for row, pos in enumerate(part):
                variants[row, pos] = baseline_id
            occluded = {k: v.repeat(len(part), 1) for k, v in batch.items()}
            occluded["input_ids"] = variants
            probs = self.forward(occluded)[:, label_index].tolist()
            for pos, prob in zip(part, probs, strict=True):
                drops[pos] = base - float(prob)
        tokens = tok.convert_ids_to_tokens(ids.tolist())
        result = []
        for i, token in enumerate(tokens):
            if special[i]:
                continue
            start_c, end_c = offsets[i] if offsets is not None else (None, None)
            result.append((str(token), start_c, end_c, drops.get(i, 0.0)))
        return base, result
