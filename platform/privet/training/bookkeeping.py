"""Book-keeping ghost clipping: clipped per-sample gradient sums in one backward pass.

Opacus's ghost clipping runs two backward passes: one to get per-sample gradient norms,
and a second on the loss reweighted by the clipping coefficients. Both passes also
compute the (discarded, then recomputed) weight gradients. Book-keeping (Bu et al.,
"Differentially private optimization on large model at small cost", ICML 2023) needs only
one backward pass, and it only asks autograd for the gradients w.r.t. layer *outputs*, so
autograd skips every weight-gradient matmul. From the kept layer inputs `a` and output
gradients `g` we then compute, per trainable layer:

- per-sample squared norms, with the ghost-norm trick for sequences
  (‖aᵢᵀgᵢ‖² = Σₜₛ (aᵢₜ·aᵢₛ)(gᵢₜ·gᵢₛ), never materialising per-sample gradients);
- the clipped sum Σᵢ cᵢ aᵢᵀgᵢ as a single matmul — the same cost as the ordinary weight
  gradient it replaces.

The result is written to `p.grad` and handed to Opacus's fast-gradient-clipping
optimizer, which adds the noise (once per logical step), scales, and feeds the
accountant, exactly as with Opacus's own ghost clipping. Under bf16 mixed precision the
layer inputs and output gradients arrive in bfloat16; they are cast to float32 before any
norm, coefficient or sum is computed, so the clipping bound holds exactly as in fp32
(tests/training/test_device.py). Supported trainable layers:
Linear, LayerNorm, Embedding (all of BERT); any other layer with trainable parameters is
refused, so callers fall back to Opacus.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle


class UnsupportedLayer(TypeError):
    """A trainable layer type book-keeping clipping does not handle."""


@dataclass
class _Record:
    module: nn.Module
    activation: torch.Tensor
    output: torch.Tensor


def _as_3d(x: torch.Tensor, batch: int) -> torch.Tensor:
    return x.reshape(batch, -1, x.shape[-1])


class BookKeepingClipper:
    """Hooks on a model's trainable layers; `backward` sets clipped gradient sums."""

    SUPPORTED = (nn.Linear, nn.LayerNorm, nn.Embedding)

    def __init__(self, model: nn.Module, *, max_grad_norm: float) -> None:
        self.max_grad_norm = float(max_grad_norm)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self._records: list[_Record] = []
        self._seen: set[int] = set()
        self._handles: list[RemovableHandle] = []
        for module in model.modules():
            own = [p for p in module.parameters(recurse=False) if p.requires_grad]
            if not own:
                continue
            if not isinstance(module, self.SUPPORTED):
                raise UnsupportedLayer(f"trainable {type(module).__name__} is not supported")
            self._handles.append(module.register_forward_hook(self._capture))

    def _capture(
        self, module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor
    ) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        if id(module) in self._seen:
            raise UnsupportedLayer(f"{type(module).__name__} called twice in one forward pass")
        self._seen.add(id(module))
        self._records.append(_Record(module, inputs[0].detach(), out))

    def reset(self) -> None:
        self._records.clear()
        self._seen.clear()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.reset()

    def backward(
        self,
        per_sample_loss: torch.Tensor,
        weights: torch.Tensor | None = None,
        *,
        copies: int = 1,
    ) -> torch.Tensor:
        """Set `p.grad = Σᵢ wᵢ cᵢ ∇ℓᵢ` with cᵢ = min(1, C / ‖∇ℓᵢ‖); return the norms ‖∇ℓᵢ‖.

        `weights` (each in (0, 1], e.g. per-class weights) scale the *clipped* gradients:
        a weight on the loss before clipping would be undone whenever the example is
        clipped, while wᵢ·cᵢ·∇ℓᵢ keeps it and still has norm at most C.

        `copies` = K (augmentation multiplicity): rows i·K … i·K + K - 1 are example i's
        copies and ℓᵢ is the mean of their losses, so ∇ℓᵢ is the mean of the copies'
        gradients, clipped once per example. Read as one sequence of K·T tokens, example
        i's gradient of a layer is Σ over all its copies' tokens of aₜᵀgₜ: the per-example
        norms and clipped sums below need nothing else. `weights` are per example."""
        records = self._records
        rows = per_sample_loss.shape[0]
        if copies < 1 or rows % copies:
            raise ValueError(f"{rows} rows are not whole groups of {copies} copies")
        batch = rows // copies
        if copies > 1:
            per_sample_loss = per_sample_loss / copies
        outputs = [r.output for r in records]
        grads = torch.autograd.grad(per_sample_loss.sum(), outputs, allow_unused=True)
        sq_norms = torch.zeros(batch, dtype=torch.float32, device=per_sample_loss.device)
        partial: list[tuple[_Record, torch.Tensor, dict[str, torch.Tensor]]] = []
        for record, g_or_none, out in zip(records, grads, outputs, strict=True):
            # fp32 whatever the forward ran in (bf16 autocast): the norms, the clipping
            # coefficients and the clipped sums are the DP guarantee. A no-op in fp32.
            g = torch.zeros_like(out) if g_or_none is None else g_or_none
            g = g.float()
            if record.activation.is_floating_point():  # an Embedding's are token ids
                record.activation = record.activation.float()
            terms = self._per_sample_terms(record, g, batch)
            for value in terms.values():
                sq_norms += value[0]
            partial.append((record, g, {k: v[1] for k, v in terms.items()}))
        norms = sq_norms.sqrt()
        coef = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        if weights is not None:
            coef = coef * weights.to(coef.dtype).clamp(min=0.0, max=1.0)
        for record, g, extra in partial:
            self._clipped_sum(record, g, coef, batch, extra)
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.reset()
        return norms.detach()

    # Per layer: squared per-sample norms of each parameter's gradient (and anything
    # the clipped sum can reuse), then the clipped sum itself.

    def _per_sample_terms(
        self, r: _Record, g: torch.Tensor, batch: int
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        m = r.module
        none = torch.empty(0)
        out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if isinstance(m, nn.Linear):
            a, gg = _as_3d(r.activation, batch), _as_3d(g, batch)
            if m.weight.requires_grad:
                t, din, dout = a.shape[1], a.shape[2], gg.shape[2]
                if t * t * (din + dout) < t * din * dout:
                    aa = torch.bmm(a, a.transpose(1, 2))
                    gga = torch.bmm(gg, gg.transpose(1, 2))
                    out["weight"] = ((aa * gga).sum(dim=(1, 2)), none)
                else:
                    per = torch.bmm(gg.transpose(1, 2), a)
                    out["weight"] = (per.pow(2).sum(dim=(1, 2)), none)
            if m.bias is not None and m.bias.requires_grad:
                gb = gg.sum(dim=1)
                out["bias"] = (gb.pow(2).sum(dim=1), gb)
        elif isinstance(m, nn.LayerNorm):
            x = r.activation
            xhat = F.layer_norm(x, m.normalized_shape, None, None, m.eps)
            gg = _as_3d(g, batch)
            if m.weight is not None and m.weight.requires_grad:
                gw = (gg * _as_3d(xhat, batch)).sum(dim=1)
                out["weight"] = (gw.pow(2).sum(dim=1), gw)
            if m.bias is not None and m.bias.requires_grad:
                gb = gg.sum(dim=1)
                out["bias"] = (gb.pow(2).sum(dim=1), gb)
        elif isinstance(m, nn.Embedding):
            ids = r.activation.reshape(batch, -1)
            gg = self._embedding_grad(m, ids, g, batch)
            same = (ids[:, :, None] == ids[:, None, :]).to(gg.dtype)
            gram = torch.bmm(gg, gg.transpose(1, 2))
            out["weight"] = ((same * gram).sum(dim=(1, 2)), none)
        return out

    @staticmethod
    def _embedding_grad(
        m: nn.Embedding, ids: torch.Tensor, g: torch.Tensor, batch: int
    ) -> torch.Tensor:
        gg = _as_3d(g, batch)
        if m.padding_idx is not None:  # the padding row never receives gradient
            gg = gg * (ids != m.padding_idx).unsqueeze(-1).to(gg.dtype)
        return gg

    def _clipped_sum(
        self,
        r: _Record,
        g: torch.Tensor,
        coef: torch.Tensor,
        batch: int,
        extra: dict[str, torch.Tensor],
    ) -> None:
        m = r.module
        c = coef.float()
        if isinstance(m, nn.Linear):
            a, gg = _as_3d(r.activation, batch), _as_3d(g, batch)
            if m.weight.requires_grad:
                scaled = (gg * c[:, None, None]).reshape(-1, gg.shape[-1])
                _add_grad(m.weight, scaled.t() @ a.reshape(-1, a.shape[-1]))
            if "bias" in extra:
                _add_grad(m.bias, (extra["bias"] * c[:, None]).sum(dim=0))
        elif isinstance(m, nn.LayerNorm):
            if "weight" in extra:
                _add_grad(m.weight, (extra["weight"] * c[:, None]).sum(dim=0))
            if "bias" in extra:
                _add_grad(m.bias, (extra["bias"] * c[:, None]).sum(dim=0))
        elif isinstance(m, nn.Embedding):
            ids = r.activation.reshape(batch, -1)
            gg = self._embedding_grad(m, ids, g, batch) * c[:, None, None]
            dense = torch.zeros_like(m.weight)
            dense.index_add_(0, ids.reshape(-1), gg.reshape(-1, gg.shape[-1]))
            _add_grad(m.weight, dense)


def _add_grad(p: torch.Tensor | None, value: torch.Tensor) -> None:
    if p is None:
        return
    value = value.reshape(p.shape).to(p.dtype)
    if p.grad is None:
        p.grad = value
    else:
        p.grad += value
