"""The auto recipe (issue 22): deterministic, monotone in the right directions, overridable,
every value explained; class weights keep each example's clipped contribution within C."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from privet.training import accounting
from privet.training.recipe import (
    AUTO,
    CALLER,
    RARE_SHARE,
    RecipeInputs,
    auto_balance,
    choose,
    class_weights,
    imbalance_ratio,
    logit_adjustment,
    rarest_share,
    with_noise,
)

ns = st.integers(min_value=1, max_value=200_000)
epsilons = st.floats(min_value=0.1, max_value=20.0, allow_nan=False)
counts = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(1, 10_000), min_size=2, max_size=5
)


def _schedule(inputs: RecipeInputs) -> tuple[float, int]:
    c = choose(inputs).config
    return accounting.steps_for(
        n=inputs.n, logical_batch_size=c.logical_batch_size, epochs=c.epochs
    )


@settings(max_examples=200, deadline=None)
@given(
    n=ns,
    eps=epsilons,
    label_counts=st.none() | counts,
    strategy=st.sampled_from([AUTO, "full", "top-2", "head"]),
)
def test_recipe_is_deterministic_and_within_bounds(
    n: int, eps: float, label_counts: dict[str, int] | None, strategy: str
) -> None:
    inputs = RecipeInputs(n=n, label_counts=label_counts, target_epsilon=eps, strategy=strategy)
    first, second = choose(inputs), choose(inputs)
    assert first == second
    c = first.config
    assert 1 <= c.logical_batch_size <= n
    assert 1 <= c.epochs <= 30
    assert c.max_grad_norm > 0 and c.learning_rate > 0
    assert 0 < c.delta < 1 / n  # type: ignore[operator]
    c.validate(n)
    # every recipe field has a reason, and says who chose it
    for name in ("strategy", "logical_batch_size", "epochs", "learning_rate", "max_grad_norm"):
        assert first.choices[name].reason
        assert first.choices[name].source in (AUTO, CALLER)
    assert (first.choices["strategy"].source == CALLER) == (strategy != AUTO)


@settings(max_examples=200, deadline=None)
@given(label_counts=counts)
def test_class_weights_are_at_most_one_and_the_rarest_class_weighs_one(
    label_counts: dict[str, int],
) -> None:
    weights = class_weights(label_counts)
    assert all(0 < w <= 1 for w in weights.values())
    rarest = min(label_counts.values())
    assert all(weights[k] == 1.0 for k, v in label_counts.items() if v == rarest)
    n = sum(label_counts.values())
    on = choose(RecipeInputs(n=n, label_counts=label_counts, class_balance="on")).config
    assert dict(on.class_weights) == weights and on.logit_adjustment == ()
    off = choose(RecipeInputs(n=100, label_counts=label_counts, class_balance="none"))
    assert off.config.class_weights == () and off.config.logit_adjustment == ()


@settings(max_examples=200, deadline=None)
@given(label_counts=counts)
def test_logit_adjustment_is_the_log_prior_and_auto_takes_it_for_a_rare_class(
    label_counts: dict[str, int],
) -> None:
    """offset_c = 1·log(count_c / total) (Menon et al. 2021's tau = 1): ≤ 0, and softmax of
    the offsets gives back the prior; `auto` takes it exactly when the rarest class holds
    under 10 % of the rows with a class ratio of at least 3 (chosen on the rare calibration
    sets: README), and no class weights."""
    offsets = logit_adjustment(label_counts)
    total = sum(label_counts.values())
    for label, count in label_counts.items():
        assert offsets[label] == pytest.approx(math.log(count / total), abs=1e-12)
        assert offsets[label] <= 0.0
    prior = torch.softmax(torch.tensor([offsets[k] for k in sorted(offsets)]), dim=0)
    expected = torch.tensor([label_counts[k] / total for k in sorted(offsets)])
    torch.testing.assert_close(prior, expected.float())
    recipe = choose(RecipeInputs(n=total, label_counts=label_counts))
    rare = imbalance_ratio(label_counts) >= 3.0 and min(label_counts.values()) < 0.1 * total
    assert recipe.config.logit_adjustment == (tuple(sorted(offsets.items())) if rare else ())
    assert recipe.config.class_weights == ()
    reason = recipe.choices["logit_adjustment"].reason
    assert ("rare calibration sets" in reason) == rare
    forced = choose(RecipeInputs(n=total, label_counts=label_counts, class_balance="logit_adjust"))
    assert dict(forced.config.logit_adjustment) == offsets
    recipe.config.validate(total)


@settings(max_examples=200, deadline=None)
@given(
    label_counts=counts,
    n=ns,
    eps=epsilons,
    strategy=st.sampled_from([AUTO, "full", "head"]),
    scale=st.integers(1, 50),
    cut=st.integers(1, 10_000),
)
def test_auto_class_balance_depends_on_the_label_counts_alone_and_is_monotone(
    label_counts: dict[str, int], n: int, eps: float, strategy: str, scale: int, cut: int
) -> None:
    """The same counts give the same choice whatever n, ε or strategy; scaling every count
    keeps it (shares and ratio unchanged); making the rarest class rarer never turns it off."""
    method, _ = auto_balance(label_counts)

    def chosen(inputs: RecipeInputs) -> str:
        return "logit_adjust" if choose(inputs).config.logit_adjustment else "none"

    other = RecipeInputs(n=n, label_counts=label_counts, target_epsilon=eps, strategy=strategy)
    assert chosen(other) == method
    assert chosen(RecipeInputs(n=n, label_counts=label_counts)) == method
    scaled = {k: v * scale for k, v in label_counts.items()}
    assert auto_balance(scaled)[0] == method
    rarest = min(label_counts, key=lambda k: (label_counts[k], k))
    rarer = {**label_counts, rarest: max(1, label_counts[rarest] - cut)}
    assert rarest_share(rarer) <= rarest_share(label_counts)
    if method == "logit_adjust":
        assert auto_balance(rarer)[0] == "logit_adjust"
        assert rarest_share(label_counts) < RARE_SHARE
    # non-private jobs: no balancing by auto (the rule was calibrated on DP runs)
    assert chosen(RecipeInputs(n=n, label_counts=label_counts, private=False)) == "none"


def test_the_logit_adjusted_loss_is_the_formula() -> None:
    """CE(z + tau·log prior, y) = logsumexp(z + log prior) - z_y - log prior_y, by hand."""
    from privet.training.privacy import adjusted_logits

    counts = {"a": 900, "b": 90, "c": 10}
    offsets = torch.tensor([logit_adjustment(counts)[k] for k in ("a", "b", "c")])
    z = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 1.0]])
    y = torch.tensor([0, 2, 1])
    loss = torch.nn.functional.cross_entropy(adjusted_logits(z, offsets), y, reduction="none")
    for i in range(3):
        prior = [900 / 1000, 90 / 1000, 10 / 1000]
        shifted = [float(z[i, c]) + math.log(prior[c]) for c in range(3)]
        by_hand = math.log(sum(math.exp(v) for v in shifted)) - shifted[int(y[i])]
        assert float(loss[i]) == pytest.approx(by_hand, rel=1e-5, abs=1e-6)
    # the rare class's loss rises and the frequent class's falls (the balancing effect)
    plain = torch.nn.functional.cross_entropy(z, y, reduction="none")
    assert float(loss[0]) < float(plain[0]) and float(loss[1]) > float(plain[1])
    assert adjusted_logits(z, None) is z  # no adjustment: the raw logits


def test_class_balance_settings_are_refused_with_the_rule() -> None:
    from privet.training.config import ConfigError, TrainingConfig

    with pytest.raises(ConfigError, match="class_balance must be one of"):
        choose(RecipeInputs(n=100, label_counts={"a": 90, "b": 10}, class_balance="both"))
    with pytest.raises(ConfigError, match="finite"):
        TrainingConfig(logit_adjustment=(("a", 0.5),)).validate(100)
    with pytest.raises(ConfigError, match="not both"):
        TrainingConfig(class_weights=(("a", 0.5),), logit_adjustment=(("a", -1.0),)).validate(100)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 100_000), eps=epsilons, smaller=st.floats(0.1, 0.95))
def test_the_schedule_does_not_depend_on_epsilon_so_less_epsilon_never_means_less_noise(
    n: int, eps: float, smaller: float
) -> None:
    """At one n, q and T do not change with ε, so the smallest sigma reaching ε is monotone."""
    base = RecipeInputs(n=n, target_epsilon=eps, delta=1e-6, strategy="bitfit")
    assert _schedule(base) == _schedule(replace(base, target_epsilon=eps * smaller))


@settings(max_examples=4, deadline=None)
@given(n=st.integers(100, 50_000), eps=st.sampled_from([1.0, 3.0, 8.0]))
def test_more_data_never_needs_more_noise(n: int, eps: float) -> None:
    """sigma chosen for n rows already reaches ε at 2n rows (same δ): so the smallest sigma for 2n
    is no larger, and the chosen sigma no larger beyond the accountant's search tolerance."""
    small = RecipeInputs(n=n, target_epsilon=eps, delta=1e-7, accountant="rdp")
    large = replace(small, n=2 * n)
    sigma = with_noise(choose(small)).choices["noise_multiplier"].value
    q, steps = _schedule(large)
    eps_large = accounting.compute_epsilon(
        noise_multiplier=sigma, sample_rate=q, steps=steps, delta=1e-7, accountant="rdp"
    )
    assert eps_large <= eps
    sigma_large = with_noise(choose(large)).choices["noise_multiplier"].value
    assert sigma_large <= sigma * 1.01


def test_smaller_epsilon_gives_more_noise_and_the_noise_reaches_the_target() -> None:
    """The sigma the recipe reports spends at most the target ε, recomputed independently."""
    sigmas = {}
    for eps in (3.0, 8.0):
        recipe = with_noise(choose(RecipeInputs(n=1800, target_epsilon=eps)))
        c = recipe.config
        sigma = recipe.choices["noise_multiplier"].value
        q, steps = accounting.steps_for(
            n=1800, logical_batch_size=c.logical_batch_size, epochs=c.epochs
        )
        spent = accounting.compute_epsilon(
            noise_multiplier=sigma, sample_rate=q, steps=steps, delta=c.delta or 0.0
        )
        assert spent <= eps
        sigmas[eps] = sigma
    assert sigmas[3.0] > sigmas[8.0]


def test_caller_fields_win_and_are_recorded_as_the_callers() -> None:
    inputs = RecipeInputs(
        n=2000,
        label_counts={"ok": 1900, "fraud": 100},
        target_epsilon=3.0,
        overrides={"epochs": 2, "learning_rate": 0.05, "dropout": 0.2},
    )
    recipe = choose(inputs)
    assert recipe.config.epochs == 2
    assert recipe.config.learning_rate == 0.05
    assert recipe.config.dropout == 0.2
    for name in ("epochs", "learning_rate", "dropout"):
        assert recipe.choices[name].source == CALLER
    assert recipe.choices["logical_batch_size"].source == AUTO
    record = recipe.to_dict()
    assert record["choices"]["epochs"] == {"value": 2, "source": CALLER, "reason": CALLER}
    offsets = record["choices"]["logit_adjustment"]["value"]  # fraud 5 % < 10 %: README
    assert offsets == pytest.approx({"fraud": math.log(0.05), "ok": math.log(0.95)})
    assert record["choices"]["class_weights"]["value"] == []
    assert record["inputs"]["label_counts"] == {"fraud": 100, "ok": 1900}
    assert "Mehta" in choose(replace(inputs, n=200)).choices["strategy"].reason


def test_a_caller_strategy_changes_what_the_recipe_chooses_for_it() -> None:
    full = choose(RecipeInputs(n=5000, target_epsilon=8.0, strategy="full"))
    assert full.config.strategy == "full" and full.config.optimizer == "adamw"
    assert full.choices["strategy"].source == CALLER
    auto = choose(RecipeInputs(n=5000, target_epsilon=8.0))
    assert auto.config.strategy == "bitfit" and auto.config.optimizer == "sgd"


def test_class_weights_scale_clipped_gradients_and_never_exceed_c() -> None:
    """Each example's contribution is w·clip_C(grad): at most w·C ≤ C (the DP sensitivity), and
    the weight is not undone by clipping (as a weight on the loss before clipping would be)."""
    from privet.training.bookkeeping import BookKeepingClipper

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 3)
    )
    clip = 0.5
    clipper = BookKeepingClipper(model, max_grad_norm=clip)
    x = torch.randn(8, 6) * 5
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    weights = torch.tensor([1.0, 0.25, 0.5])
    for i in range(len(y)):
        for p in model.parameters():
            p.grad = None
        loss = torch.nn.functional.cross_entropy(
            model(x[i : i + 1]), y[i : i + 1], reduction="none"
        )
        norm = clipper.backward(loss, weights[y[i : i + 1]])
        total = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
        w = float(weights[y[i]])
        assert float(total) <= w * clip * (1 + 1e-4) + 1e-6
        if float(norm[0]) > clip:  # clipped: the contribution is exactly w·C
            assert float(total) == pytest.approx(w * clip, rel=1e-3)
    clipper.close()


def test_class_weights_need_bk_and_stay_at_most_one() -> None:
    from privet.training.config import ConfigError, TrainingConfig

    with pytest.raises(ConfigError, match="bk"):
        TrainingConfig(class_weights=(("a", 0.5),), grad_sample_mode="ghost").validate(100)
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        TrainingConfig(class_weights=(("a", 1.5),)).validate(100)
    with pytest.raises(ConfigError, match="dropout"):
        TrainingConfig(dropout=1.0).validate(100)
    with pytest.raises(ConfigError, match="label_smoothing"):
        TrainingConfig(label_smoothing=-0.1).validate(100)


@pytest.mark.parametrize("balance", ["on", "logit_adjust"])
def test_train_runs_the_auto_recipe_with_class_balance_dropout_and_smoothing(
    tiny_catalog,  # type: ignore[no-untyped-def]
    balance: str,
) -> None:
    from privet.training.data import LabelledTexts
    from privet.training.trainer import train
    from tests.training.conftest import make_texts

    data = make_texts(80, seed=1)
    labels = ["pos" if i % 5 == 0 else "neg" for i in range(80)]  # 4:1
    train_set = LabelledTexts(list(data.texts), labels)
    recipe = choose(
        RecipeInputs(
            n=80,
            label_counts={"neg": 64, "pos": 16},
            target_epsilon=3.0,
            base_model="tiny-mean",
            accountant="rdp",  # fast; the PRV path is checked above
            class_balance=balance,
            overrides={"max_length": 16, "dropout": 0.0, "label_smoothing": 0.1, "epochs": 3},
        )
    )
    if balance == "on":
        assert dict(recipe.config.class_weights) == {"neg": 0.5, "pos": 1.0}
    else:
        offsets = dict(recipe.config.logit_adjustment)
        assert offsets == pytest.approx({"neg": math.log(0.8), "pos": math.log(0.2)})
    result = train(recipe.config, train_set, make_texts(20, seed=2), catalog=tiny_catalog)
    assert result.config.class_weights == recipe.config.class_weights
    assert result.config.logit_adjustment == recipe.config.logit_adjustment
    assert result.config.dropout == 0.0 and result.config.label_smoothing == 0.1
    p = result.privacy
    assert p is not None and p.epsilon <= 3.0
    assert p.epsilon == accounting.compute_epsilon(
        noise_multiplier=p.noise_multiplier,
        sample_rate=p.sample_rate,
        steps=p.steps,
        delta=p.delta,
        accountant="rdp",
    )
