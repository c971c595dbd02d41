from __future__ import annotations

import pytest
import torch

from privet.training.catalog import Catalog, load_base_model
from privet.training.data import DataError, LabelledTexts, encode, label_names_for


def test_explicit_contiguous_ids_and_trimmed_batches(tiny_catalog: Catalog) -> None:
    tok = load_base_model("tiny", num_labels=2, catalog=tiny_catalog).tokenizer
    data = LabelledTexts(["good movie", "the film was very bad indeed"], ["pos", "neg"])
    enc = encode(data, tok, label_names=label_names_for(data), max_length=16)
    assert enc.position_ids.shape == (2, 16) and enc.position_ids.is_contiguous()
    assert torch.equal(enc.position_ids[1], torch.arange(16))
    assert enc.token_type_ids.shape == (2, 16)
    assert enc.labels.tolist() == [1, 0]
    b = enc.batch([0])
    assert b["input_ids"].shape == (1, 4)  # [CLS] good movie [SEP]
    assert all(t.is_contiguous() for t in b.values())
    assert b["position_ids"].shape == (1, 4)


def test_bad_data() -> None:
    with pytest.raises(DataError):
        LabelledTexts(["a"], [])
    with pytest.raises(DataError):
        label_names_for(LabelledTexts(["a", "b"], ["x", "x"]))
