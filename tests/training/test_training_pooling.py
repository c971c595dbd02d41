"""Mean pooling: what the classifier reads, and that saved weights rebuild the same model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from transformers import BertForSequenceClassification

from privet.training.catalog import (
    BaseModelSpec,
    Catalog,
    CatalogError,
    load_base_model,
    load_finetuned,
    weights_pooling,
)
from privet.training.data import LabelledTexts, encode
from privet.training.evaluation import evaluate
from privet.training.pooling import MeanPooledBertForSequenceClassification, masked_mean
from privet.training.strategies import Strategy, apply_strategy
from privet.training.trainer import train, weights_to_bytes
from tests.training.conftest import TINY_CONFIG as CONFIG


def test_masked_mean_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(masked_mean(hidden, mask), torch.tensor([[2.0, 3.0]]))
    torch.testing.assert_close(masked_mean(hidden, None), torch.tensor([[104 / 3, -94 / 3]]))


def test_mean_pooled_logits_are_the_classifier_of_the_masked_mean(tiny_catalog: Catalog) -> None:
    loaded = load_base_model("tiny-mean", num_labels=3, seed=1, catalog=tiny_catalog)
    model = loaded.model.eval()
    assert isinstance(model, MeanPooledBertForSequenceClassification)
    assert not any(".pooler." in n for n, _ in model.named_parameters())
    texts = ["the movie was very good", "bad"]
    batch = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    assert batch["attention_mask"][1].sum() < batch["attention_mask"].shape[1]  # padded
    with torch.no_grad():
        logits = model(**batch).logits
        hidden = model.bert(**batch).last_hidden_state
        for i, text in enumerate(texts):
            real = int(batch["attention_mask"][i].sum())
            expected = model.classifier(hidden[i, :real].mean(dim=0))
            torch.testing.assert_close(logits[i], expected)
            alone = loaded.tokenizer([text], return_tensors="pt")
            torch.testing.assert_close(model(**alone).logits[0], logits[i], atol=1e-5, rtol=1e-5)


def test_mean_pooled_encoder_keeps_the_pretrained_weights(
    tiny_catalog: Catalog, tiny_spec: BaseModelSpec
) -> None:
    """Same checkpoint, two poolings: the encoders are identical, only the head differs."""
    mean = load_base_model("tiny-mean", num_labels=2, catalog=tiny_catalog).model
    cls = load_base_model("tiny", num_labels=2, catalog=tiny_catalog).model
    cls_state = cls.state_dict()
    for name, value in mean.bert.state_dict().items():
        torch.testing.assert_close(value, cls_state[f"bert.{name}"], msg=name)
    applied = apply_strategy(mean, Strategy.parse("head"))
    assert applied.trainable_parameter_names == ("classifier.weight", "classifier.bias")


def test_trained_weights_record_their_pooling_and_rebuild_the_same_model(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    config = replace(CONFIG, base_model="tiny-mean", strategy="full", epochs=1)
    result = train(config, train_texts, eval_texts, catalog=tiny_catalog)
    assert result.pooling == "mean" and weights_pooling(result.weights) == "mean"
    rebuilt = load_finetuned(
        result.weights, base_model="tiny-mean", num_labels=2, catalog=tiny_catalog
    )
    assert isinstance(rebuilt.model, MeanPooledBertForSequenceClassification)
    enc = encode(eval_texts, rebuilt.tokenizer, label_names=["neg", "pos"], max_length=12)
    again = evaluate(rebuilt.model.eval(), enc, ["neg", "pos"], batch_size=16)
    assert again.confusion_matrix == result.metrics.confusion_matrix
    assert again.accuracy == result.metrics.accuracy


def test_weights_without_pooling_metadata_rebuild_with_the_cls_pooler(
    tiny_catalog: Catalog,
) -> None:
    """Versions saved before pooling was recorded keep loading as they were trained, even
    when the catalog entry now pools by mean."""
    legacy = load_base_model("tiny", num_labels=2, seed=5, catalog=tiny_catalog).model.eval()
    weights = weights_to_bytes(legacy, {"format": "pt"})
    assert weights_pooling(weights) == "cls"
    rebuilt = load_finetuned(weights, base_model="tiny-mean", num_labels=2, catalog=tiny_catalog)
    assert isinstance(rebuilt.model, BertForSequenceClassification)
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        torch.testing.assert_close(
            rebuilt.model(input_ids=ids).logits, legacy(input_ids=ids).logits
        )


def test_unknown_pooling_is_refused(tiny_spec: BaseModelSpec) -> None:
    with pytest.raises(CatalogError, match="pooling"):
        BaseModelSpec(name="x", path=tiny_spec.path, digests=tiny_spec.digests, pooling="max")
    size = 2
    header = json.dumps({"__metadata__": {"pooling": "max"}}).encode()
    with pytest.raises(CatalogError, match="unknown pooling"):
        weights_pooling(len(header).to_bytes(8, "little") + header + b"\0" * size)
