"""train(...) end to end on a tiny BERT: refusal, record, progress, cancellation, weights."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load as load_safetensors

from privet.training import accounting
from privet.training.catalog import Catalog, load_finetuned
from privet.training.data import LabelledTexts, encode
from privet.training.evaluation import predict
from privet.training.progress import ProgressEvent, TrainingCancelled
from privet.training.trainer import (
    NON_PRIVATE_LABEL,
    ConfigError,
    NonPrivateRefused,
    privacy_plan,
    train,
)
from tests.training.conftest import TINY_CONFIG

CONFIG = TINY_CONFIG


def test_non_private_refused_for_personal_data(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    cfg = replace(CONFIG, private=False, target_epsilon=None)
    assert cfg.contains_personal_data  # the default is the safe assumption
    with pytest.raises(NonPrivateRefused, match="personal data"):
        train(cfg, train_texts, eval_texts, catalog=tiny_catalog)


def test_non_private_allowed_when_declared_and_labelled(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    cfg = replace(CONFIG, private=False, contains_personal_data=False, target_epsilon=None)
    events: list[ProgressEvent] = []
    result = train(cfg, train_texts, eval_texts, progress=events.append, catalog=tiny_catalog)
    assert not result.private and result.privacy is None
    assert result.privacy_label == NON_PRIVATE_LABEL
    assert load_safetensors(result.weights)  # weights exist
    assert all(e.epsilon is None for e in events)
    assert result.to_dict()["privacy_label"] == NON_PRIVATE_LABEL


def test_invalid_privacy_parameters_are_refused(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    with pytest.raises(ConfigError, match="δ"):
        train(replace(CONFIG, delta=0.5), train_texts, eval_texts, catalog=tiny_catalog)
    with pytest.raises(ConfigError, match="target ε"):
        train(replace(CONFIG, target_epsilon=None), train_texts, eval_texts, catalog=tiny_catalog)


def test_unknown_optimizer_is_refused(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    with pytest.raises(ConfigError, match="optimizer"):
        train(replace(CONFIG, optimizer="lion"), train_texts, eval_texts, catalog=tiny_catalog)


def test_sgd_and_bitfit_under_dp_train_only_what_they_should(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    """DP-BiTFiT with momentum SGD: biases and LayerNorms move, encoder matrices do not."""
    from privet.training.catalog import load_base_model

    cfg = replace(CONFIG, epochs=1, strategy="bitfit", optimizer="sgd", learning_rate=0.5)
    result = train(cfg, train_texts, eval_texts, catalog=tiny_catalog)
    assert result.config.optimizer == "sgd" and result.strategy.strategy == "bitfit"
    assert result.to_dict()["config"]["optimizer"] == "sgd"
    state = load_safetensors(result.weights)
    base = load_base_model("tiny", num_labels=2, seed=7, catalog=tiny_catalog).model.state_dict()
    assert not torch.equal(
        state["bert.encoder.layer.0.attention.self.query.bias"],
        base["bert.encoder.layer.0.attention.self.query.bias"],
    )
    assert not torch.equal(
        state["bert.encoder.layer.0.output.LayerNorm.weight"],
        base["bert.encoder.layer.0.output.LayerNorm.weight"],
    )
    assert torch.equal(
        state["bert.encoder.layer.0.attention.self.query.weight"],
        base["bert.encoder.layer.0.attention.self.query.weight"],
    )


def test_head_learning_rate_gets_its_own_parameter_group(tiny_catalog: Catalog) -> None:
    from privet.training.catalog import load_base_model
    from privet.training.strategies import Strategy, apply_strategy
    from privet.training.trainer import make_optimizer

    model = load_base_model("tiny", num_labels=2, catalog=tiny_catalog).model
    apply_strategy(model, Strategy.parse("top-1"))
    cfg = replace(CONFIG, learning_rate=1e-4, head_learning_rate=3e-2)
    groups = make_optimizer(cfg, model).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    by_lr = {g["lr"]: {names[id(p)] for p in g["params"]} for g in groups}
    assert set(by_lr) == {1e-4, 3e-2}
    assert by_lr[3e-2] and all(n.startswith(("classifier.", "bert.pooler.")) for n in by_lr[3e-2])
    assert by_lr[1e-4] and all(n.startswith("bert.encoder.layer.1.") for n in by_lr[1e-4])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert by_lr[1e-4] | by_lr[3e-2] == trainable
    single = make_optimizer(replace(cfg, head_learning_rate=None), model).param_groups
    assert {g["lr"] for g in single} == {1e-4}
    with pytest.raises(ConfigError, match="head_learning_rate"):
        replace(cfg, head_learning_rate=0.0).validate(200)


def test_private_run_records_everything_and_epsilon_recomputes(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    events: list[ProgressEvent] = []
    result = train(CONFIG, train_texts, eval_texts, progress=events.append, catalog=tiny_catalog)
    p = result.privacy
    assert result.private and p is not None
    assert p.accountant == "prv" and p.grad_sample_mode == "bk" and not p.secure_mode
    assert p.sample_rate == pytest.approx(40 / 200)
    assert p.steps == result.steps == 2 * 5
    assert p.delta == accounting.default_delta(200)
    assert p.max_grad_norm == CONFIG.max_grad_norm
    assert p.epsilon <= CONFIG.target_epsilon
    assert p.epsilon == accounting.compute_epsilon(
        noise_multiplier=p.noise_multiplier,
        sample_rate=p.sample_rate,
        steps=p.steps,
        delta=p.delta,
        accountant=p.accountant,
    )
    # progress: one event per logical step, rising steps and ε; last ε is the record
    assert [e.step for e in events] == list(range(1, p.steps + 1))
    eps = [e.epsilon for e in events]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(eps))
    assert eps[-1] == pytest.approx(p.epsilon, rel=1e-9)
    assert [e.epoch for e in events] == [1] * 5 + [2] * 5
    assert result.strategy.strategy == "top-1" and result.seed == 7 and result.epochs == 2
    assert result.label_names == ("neg", "pos")
    assert 0.0 <= result.metrics.accuracy <= 1.0
    planned = privacy_plan(CONFIG, 200)  # what admission sees is what training used
    assert (planned.noise_multiplier, planned.steps, planned.epsilon) == (
        p.noise_multiplier,
        p.steps,
        p.epsilon,
    )
    record = result.to_dict()
    assert "weights" not in record and len(record["weights_sha256"]) == 64


def test_weights_round_trip_through_safetensors_bytes(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    result = train(CONFIG, train_texts, eval_texts, catalog=tiny_catalog)
    state = load_safetensors(result.weights)
    assert not any(k.startswith("_module.") for k in state)
    assert "classifier.weight" in state
    loaded = load_finetuned(result.weights, base_model="tiny", num_labels=2, catalog=tiny_catalog)
    enc = encode(eval_texts, loaded.tokenizer, label_names=result.label_names, max_length=12)
    pred = predict(loaded.model, enc)
    acc = (pred == enc.labels).float().mean().item()
    assert acc == pytest.approx(result.metrics.accuracy)


def test_same_seed_same_weights(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    cfg = replace(CONFIG, epochs=1)
    a = train(cfg, train_texts, eval_texts, catalog=tiny_catalog)
    b = train(cfg, train_texts, eval_texts, catalog=tiny_catalog)
    c = train(replace(cfg, seed=8), train_texts, eval_texts, catalog=tiny_catalog)
    assert a.weights == b.weights
    assert a.weights != c.weights


def test_secure_mode_is_not_reproducible(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    cfg = replace(CONFIG, epochs=1, secure_mode=True, strategy="head")
    a = train(cfg, train_texts, eval_texts, catalog=tiny_catalog)
    b = train(cfg, train_texts, eval_texts, catalog=tiny_catalog)
    assert a.privacy is not None and a.privacy.secure_mode
    assert a.weights != b.weights


def test_cancellation_stops_training(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    events: list[ProgressEvent] = []
    with pytest.raises(TrainingCancelled) as info:
        train(
            CONFIG,
            train_texts,
            eval_texts,
            progress=events.append,
            should_cancel=lambda: len(events) >= 3,
            catalog=tiny_catalog,
        )
    assert len(events) == 3
    assert info.value.steps == 3
    assert info.value.epsilon_spent == pytest.approx(events[-1].epsilon)


def test_full_strategy_trains_embeddings_under_dp(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    """opacus#841: position/token-type embeddings need explicit per-example ids."""
    for mode in ("bk", "ghost", "hooks"):
        cfg = replace(CONFIG, epochs=1, strategy="full", grad_sample_mode=mode)
        result = train(cfg, train_texts, eval_texts, catalog=tiny_catalog)
        state = load_safetensors(result.weights)
        from privet.training.catalog import load_base_model

        base = load_base_model("tiny", num_labels=2, seed=7, catalog=tiny_catalog).model
        name = "bert.embeddings.position_embeddings.weight"
        assert not torch.equal(state[name], base.state_dict()[name])
