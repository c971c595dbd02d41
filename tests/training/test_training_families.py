"""Tiny BERT, RoBERTa, DistilBERT, DeBERTa-v2 and ELECTRA built in code: each trains with
DP (clipped per-sample gradients, ε that recomputes), serves, exports to a Hugging Face
folder and reloads with stock transformers giving the served logits. DeBERTa-v2 with
relative attention is refused, with the reason."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from privet.inference.classifier import Classifier
from privet.models.weights import hf_files
from privet.training import accounting
from privet.training.catalog import BaseModelSpec, Catalog, build_tiny_bert, load_base_model
from privet.training.data import LabelledTexts, encode
from privet.training.families import FAMILIES, FamilyError, family_for
from privet.training.strategies import Strategy, apply_strategy
from privet.training.trainer import TrainingConfig, train
from tests.training.conftest import WORDS, noiseless_step
from tests.training.test_training_dp_engine import _crafted, _manual_clipped_mean

TYPES = ("bert", "roberta", "distilbert", "deberta-v2", "electra")


@pytest.fixture(scope="module")
def family_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    catalog = Catalog()
    root = tmp_path_factory.mktemp("families")
    for model_type in TYPES:
        catalog.register(
            build_tiny_bert(root / model_type, name=model_type, words=WORDS, model_type=model_type)
        )
    return catalog


def test_every_tested_family_is_in_the_registry() -> None:
    assert set(FAMILIES) == set(TYPES)
    with pytest.raises(FamilyError, match="not a supported family"):
        family_for("gpt2")


def test_roberta_positions_start_after_the_padding_index(family_catalog: Catalog) -> None:
    loaded = load_base_model("roberta", num_labels=2, catalog=family_catalog)
    texts = LabelledTexts(["the movie was good", "bad"], ["pos", "neg"])
    enc = encode(
        texts, loaded.tokenizer, label_names=["neg", "pos"], max_length=8, model=loaded.model
    )
    pad = loaded.model.config.pad_token_id
    assert pad == 1 and enc.position_ids.is_contiguous()
    assert enc.position_ids[0].tolist() == [*list(range(pad + 1, pad + 1 + 6)), pad, pad]
    assert enc.position_ids[1].tolist()[:3] == [pad + 1, pad + 2, pad + 3]
    assert set(enc.position_ids[1].tolist()[3:]) == {pad}
    # the same ids the stock model computes for itself
    from transformers.models.roberta.modeling_roberta import RobertaEmbeddings

    stock = RobertaEmbeddings.create_position_ids_from_input_ids(enc.input_ids, pad)
    assert torch.equal(stock, enc.position_ids)
    distil = load_base_model("distilbert", num_labels=2, catalog=family_catalog)
    enc = encode(
        texts, distil.tokenizer, label_names=["neg", "pos"], max_length=8, model=distil.model
    )
    assert enc.token_type_ids is None and "token_type_ids" not in enc.batch([0, 1])


def _last_linear(model: nn.Module) -> nn.Linear:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


@pytest.mark.parametrize("model_type", TYPES)
def test_dp_clipping_bounds_per_sample_gradients(
    family_catalog: Catalog, train_texts: LabelledTexts, model_type: str
) -> None:
    loaded = load_base_model(model_type, num_labels=2, seed=3, catalog=family_catalog)
    model = loaded.model
    apply_strategy(model, Strategy.parse("full"))
    enc = encode(
        train_texts, loaded.tokenizer, label_names=["neg", "pos"], max_length=12, model=model
    )
    batch = _crafted(enc, 8)
    with torch.no_grad():
        _last_linear(model).weight.mul_(50.0)
    reference = copy.deepcopy(model)
    _, norms = _manual_clipped_mean(copy.deepcopy(model), batch, 1.0)
    clip = (min(norms) + max(norms)) / 2  # some examples are clipped, some are not
    assert min(norms) < clip < max(norms)
    expected, _ = _manual_clipped_mean(reference, batch, clip)
    update = noiseless_step(model, batch, clip=clip, expected_batch_size=8, grad_sample_mode="bk")
    assert torch.cat([u.flatten() for u in update.values()]).norm().item() <= clip + 1e-6
    for name, exp in expected.items():
        torch.testing.assert_close(update[name], exp, rtol=2e-3, atol=2e-6, msg=name)


@pytest.mark.parametrize("model_type", TYPES)
def test_trains_serves_exports_and_reloads_with_stock_transformers(
    family_catalog: Catalog,
    train_texts: LabelledTexts,
    eval_texts: LabelledTexts,
    model_type: str,
    tmp_path: Path,
) -> None:
    config = TrainingConfig(
        base_model=model_type,
        strategy="full",
        max_length=12,
        epochs=1,
        logical_batch_size=40,
        physical_batch_size=20,
        learning_rate=5e-3,
        target_epsilon=3.0,
        seed=7,
    )
    result = train(config, train_texts, eval_texts, catalog=family_catalog)
    p = result.privacy
    assert p is not None and p.epsilon <= 3.0
    assert p.epsilon == accounting.compute_epsilon(
        noise_multiplier=p.noise_multiplier,
        sample_rate=p.sample_rate,
        steps=p.steps,
        delta=p.delta,
        accountant=p.accountant,
    )
    assert 0.0 <= result.metrics.accuracy <= 1.0
    served = Classifier.from_weights(
        result.weights,
        base_model=model_type,
        label_names=result.label_names,
        max_length=12,
        catalog=family_catalog,
    )
    texts = ["the movie was very good", "awful plot", "the film is dull and poor"]
    scores = [s.probabilities for s in served.predict(texts)]
    folder = tmp_path / "export"
    folder.mkdir()
    files = hf_files(
        base_model=model_type,
        label_names=result.label_names,
        weights=result.weights,
        catalog=family_catalog,
    )
    for name, data in files.items():
        (folder / name).write_bytes(data)
    stock = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    enc = tokenizer(texts, padding=True, truncation=True, max_length=12, return_tensors="pt")
    with torch.inference_mode():
        probs = torch.softmax(stock(**enc).logits, dim=-1)
    torch.testing.assert_close(probs, torch.tensor(scores), rtol=1e-4, atol=1e-5)
    assert stock.config.id2label == dict(enumerate(result.label_names))


def test_deberta_with_relative_attention_is_refused_with_the_reason(tmp_path: Path) -> None:
    spec: BaseModelSpec = build_tiny_bert(
        tmp_path / "deberta-rel",
        name="deberta-rel",
        words=WORDS,
        model_type="deberta-v2",
        config_overrides={"relative_attention": True, "max_relative_positions": 16},
    )
    import json

    config = json.loads((spec.path / "config.json").read_text())
    with pytest.raises(FamilyError, match="rel_embeddings"):
        family_for("deberta-v2").check_trainable(config, pooling="cls")
    with pytest.raises(FamilyError, match="mean pooling is built for BERT"):
        family_for("roberta").check_trainable({}, pooling="mean")
    family_for("deberta-v2").check_trainable({}, pooling="cls")  # absolute positions: fine
