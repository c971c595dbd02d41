"""Warm start in the trainer: the run starts from the given classifier's weights (not the
base model's), keeps its labels in their order, and refuses labels it does not know."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load as load_safetensors

from privet.training.catalog import Catalog
from privet.training.config import ConfigError
from privet.training.data import LabelledTexts
from privet.training.trainer import train
from privet.training.warmstart import WarmStart, load_initial, run_label_names
from tests.training.conftest import TINY_CONFIG

CONFIG = replace(TINY_CONFIG, strategy="full", epochs=1, dropout=0.0)


def test_a_warm_start_loads_the_parents_weights_before_training(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    parent = train(CONFIG, train_texts, eval_texts, catalog=tiny_catalog)
    init = WarmStart(source="mv_parent", label_names=parent.label_names, weights=parent.weights)
    labels = run_label_names(train_texts, init)
    assert labels == list(parent.label_names)
    loaded = load_initial(CONFIG, label_names=labels, init=init, catalog=tiny_catalog)
    assert loaded.model.training  # Opacus needs training mode
    expected = load_safetensors(parent.weights)
    state = loaded.model.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    cold = load_initial(CONFIG, label_names=labels, init=None, catalog=tiny_catalog)
    assert not torch.equal(
        cold.model.state_dict()["classifier.weight"], expected["classifier.weight"]
    )

    child = train(replace(CONFIG, seed=8), train_texts, eval_texts, catalog=tiny_catalog, init=init)
    assert child.label_names == parent.label_names and child.weights != parent.weights


def test_labels_the_warm_start_does_not_know_are_refused(
    tiny_catalog: Catalog, train_texts: LabelledTexts
) -> None:
    init = WarmStart(source="mv_parent", label_names=("neg", "pos"), weights=b"")
    renamed = LabelledTexts(
        train_texts.texts, ["bad" if y == "neg" else y for y in train_texts.labels]
    )
    with pytest.raises(ConfigError, match="mv_parent"):
        run_label_names(renamed, init)
    subset = LabelledTexts(train_texts.texts[:5], ["pos"] * 5)
    assert run_label_names(subset, init) == ["neg", "pos"]  # the head keeps every row
