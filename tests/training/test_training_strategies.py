from __future__ import annotations

import pytest
import torch

from privet.training.catalog import Catalog, load_base_model
from privet.training.strategies import Strategy, StrategyError, apply_strategy


def _trainable(catalog: Catalog, strategy: str) -> set[str]:
    model = load_base_model("tiny", num_labels=2, catalog=catalog).model
    applied = apply_strategy(model, Strategy.parse(strategy))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == set(applied.trainable_parameter_names)
    assert applied.strategy == strategy
    assert applied.trainable_parameters == sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )
    return names


def test_head_trains_pooler_and_classifier_only(tiny_catalog: Catalog) -> None:
    names = _trainable(tiny_catalog, "head")
    assert names and all(n.startswith(("classifier.", "bert.pooler.")) for n in names)
    assert any(n.startswith("classifier.") for n in names)


def test_top_k_trains_last_layers_and_head(tiny_catalog: Catalog) -> None:
    names = _trainable(tiny_catalog, "top-1")
    assert any(n.startswith("bert.encoder.layer.1.") for n in names)
    assert not any(n.startswith("bert.encoder.layer.0.") for n in names)
    assert not any("embeddings" in n for n in names)
    assert any(n.startswith("classifier.") for n in names)
    names2 = _trainable(tiny_catalog, "top-2")
    assert any(n.startswith("bert.encoder.layer.0.") for n in names2)
    assert not any("embeddings" in n for n in names2)


def test_bitfit_trains_biases_layer_norms_and_head_only(tiny_catalog: Catalog) -> None:
    names = _trainable(tiny_catalog, "bitfit")
    model = load_base_model("tiny", num_labels=2, catalog=tiny_catalog).model
    norms = {
        f"{mn}.{pn}"
        for mn, m in model.named_modules()
        if isinstance(m, torch.nn.LayerNorm)
        for pn, _ in m.named_parameters(recurse=False)
    }
    encoder_weights = {
        n
        for n, _ in model.named_parameters()
        if n.startswith("bert.encoder.") and n.endswith(".weight")
    }
    # every layer adapts, through its biases and LayerNorm parameters
    for layer in (0, 1):
        assert any(n.startswith(f"bert.encoder.layer.{layer}.") for n in names)
    assert norms <= names and "bert.embeddings.LayerNorm.weight" in names
    assert not (encoder_weights - norms) & names  # no matrix in the encoder trains
    assert "bert.embeddings.word_embeddings.weight" not in names
    assert {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight"} <= names
    assert all(
        n.endswith(".bias") or n in norms or n.startswith(("classifier.", "bert.pooler."))
        for n in names
    )


def test_full_trains_everything(tiny_catalog: Catalog) -> None:
    model = load_base_model("tiny", num_labels=2, catalog=tiny_catalog).model
    applied = apply_strategy(model, Strategy.parse("full"))
    assert applied.trainable_parameters == applied.total_parameters


def test_bad_strategies(tiny_catalog: Catalog) -> None:
    for text in ("top-0", "top", "all", ""):
        with pytest.raises(StrategyError):
            Strategy.parse(text)
    model = load_base_model("tiny", num_labels=2, catalog=tiny_catalog).model
    with pytest.raises(StrategyError, match="2 layers"):
        apply_strategy(model, Strategy.parse("top-3"))
