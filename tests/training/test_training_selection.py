"""Model selection without leaking: the DP release of the validation confusion matrix, its
accounting together with training (checked against Google's PLD accountant), keep-best,
early stopping, and the recipe's rule."""

from __future__ import annotations

import math
from dataclasses import replace

import dp_accounting
import pytest
import torch
from torch import nn

from privet.training import accounting
from privet.training.catalog import Catalog
from privet.training.config import ConfigError
from privet.training.data import LabelledTexts
from privet.training.evaluation import metrics_from_predictions
from privet.training.noise import SecureRandom
from privet.training.recipe import RecipeInputs, choose
from privet.training.selection import (
    MIN_VALIDATION_ROWS,
    PATIENCE,
    SELECTION_SHARE,
    Selector,
    noisy_metrics,
    release_confusion,
)
from privet.training.trainer import privacy_plan, train
from tests.training.conftest import TINY_CONFIG, make_texts

Q, STEPS, EPOCHS, DELTA = 0.125, 80, 10, 1e-5


def pld_total(sigma: float, q: float, steps: int, sigma_v: float, releases: int) -> float:
    """Google's PLD accountant composing both mechanisms: independent of Opacus."""
    training = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    selection = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(sigma_v), releases)
    acc = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
    acc.compose(dp_accounting.ComposedDpEvent([training, selection]))
    return float(acc.get_epsilon(DELTA))


def test_one_example_moves_one_cell_by_one() -> None:
    """Add/remove neighbours: the L2 sensitivity of the released matrix is 1."""
    labels = ["neg", "pos"]
    y_true, y_pred = [0, 1, 1, 0, 1], [0, 1, 0, 0, 1]
    for extra in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        a = torch.tensor(metrics_from_predictions(y_true, y_pred, labels).confusion_matrix)
        b = torch.tensor(
            metrics_from_predictions(
                [*y_true, extra[0]], [*y_pred, extra[1]], labels
            ).confusion_matrix
        )
        assert float(torch.linalg.vector_norm((a - b).double())) == 1.0


@pytest.mark.parametrize("secure", [False, True])
def test_the_release_adds_gaussian_noise_of_the_planned_std(secure: bool) -> None:
    sigma, cells = 4.0, 3 * 3
    gen = torch.Generator().manual_seed(0)
    rng = SecureRandom() if secure else None
    draws = (
        torch.tensor(
            [
                release_confusion([[10] * 3] * 3, sigma, generator=gen, secure_rng=rng)
                for _ in range(400)
            ]
        ).reshape(-1, cells)
        - 10.0
    )
    assert abs(float(draws.mean())) < 0.1 * sigma
    assert float(draws.std()) == pytest.approx(sigma, rel=0.05)
    with pytest.raises(ValueError):
        release_confusion([[1]], 0.0)


def test_metrics_of_the_noisy_matrix_are_post_processing() -> None:
    exact = metrics_from_predictions([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["a", "b"])
    accuracy, macro_f1 = noisy_metrics([list(map(float, r)) for r in exact.confusion_matrix])
    assert accuracy == pytest.approx(exact.accuracy) and macro_f1 == pytest.approx(exact.macro_f1)
    accuracy, macro_f1 = noisy_metrics([[-3.0, 2.0], [0.0, 4.0]])  # negative cells clamp to 0
    assert accuracy == pytest.approx(4.0 / 6.0) and 0.0 <= macro_f1 <= 1.0


@pytest.mark.parametrize("target", [3.0, 8.0])
def test_plan_with_selection_stays_within_the_target_and_matches_pld(target: float) -> None:
    p = accounting.plan(
        target_epsilon=target,
        delta=DELTA,
        sample_rate=Q,
        steps=STEPS,
        selection_share=0.1,
        selection_releases=EPOCHS,
    )
    assert 0.97 * target <= p.epsilon <= target
    assert p.epsilon_training <= 0.9 * target and p.epsilon_selection > 0
    assert p.epsilon_training + p.epsilon_selection == pytest.approx(p.epsilon)
    again = accounting.compute_epsilon(
        noise_multiplier=p.noise_multiplier,
        sample_rate=Q,
        steps=STEPS,
        delta=DELTA,
        selection_noise_multiplier=p.selection_noise_multiplier,
        selection_releases=EPOCHS,
    )
    assert again == p.epsilon  # the recorded numbers reproduce it exactly
    theirs = pld_total(p.noise_multiplier, Q, STEPS, p.selection_noise_multiplier, EPOCHS)
    assert p.epsilon == pytest.approx(theirs, rel=0.01)
    alone = accounting.compute_epsilon(
        noise_multiplier=p.noise_multiplier, sample_rate=Q, steps=STEPS, delta=DELTA
    )
    assert alone == p.epsilon_training  # the selection adds what the total shows


def test_selection_off_is_todays_accounting() -> None:
    kw = {"target_epsilon": 3.0, "delta": DELTA, "sample_rate": Q, "steps": STEPS}
    today = accounting.plan(**kw)  # type: ignore[arg-type]
    assert accounting.plan(**kw, selection_share=0.0, selection_releases=EPOCHS) == today  # type: ignore[arg-type]
    assert today.epsilon_selection == 0.0 and today.epsilon_training == today.epsilon
    assert today.selection_releases == 0 and today.selection_noise_multiplier == 0.0


def _scripted(f1_pos: float) -> list[list[float]]:
    """A 2x2 released matrix whose class `pos` has the given F1 (class `neg` perfect)."""
    tp = 100.0 * f1_pos / (2 - f1_pos)
    return [[100.0, 0.0], [100.0 - tp, tp]]


def test_keep_best_restores_the_best_epochs_weights() -> None:
    model = nn.Linear(3, 2)
    selector = Selector(noise_multiplier=1.0, patience=None)
    for epoch, f1 in enumerate([0.5, 0.9, 0.6, 0.7], start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        assert selector.observe(epoch, model, _scripted(f1)) is False  # no patience: never stop
    assert selector.best_epoch == 2
    assert [r.best for r in selector.releases] == [True, True, False, False]
    selector.restore(model)
    assert torch.equal(model.weight, torch.full((2, 3), 2.0))
    record = selector.record(share=0.1, releases_planned=4, epochs=4, validation_examples=200)
    assert record.kept_epoch == 2 and record.epochs_run == 4 and not record.stopped_early


def test_early_stopping_after_patience_epochs_without_a_better_score() -> None:
    model = nn.Linear(3, 2)
    selector = Selector(noise_multiplier=1.0, patience=2)
    stops = [selector.observe(e, model, _scripted(f1)) for e, f1 in enumerate([0.5, 0.8, 0.6])]
    assert stops == [False, False, False]
    assert selector.observe(4, model, _scripted(0.7)) is True  # two epochs without a new best
    record = selector.record(share=0.1, releases_planned=10, epochs=10, validation_examples=9)
    assert record.stopped_early and record.epochs_run == 4 and record.kept_epoch == 1


CONFIG = replace(TINY_CONFIG, epochs=4, selection_share=0.2, patience=1)


def test_train_with_selection_records_releases_and_the_full_schedules_epsilon(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    validation = make_texts(80, seed=3)
    result = train(CONFIG, train_texts, eval_texts, catalog=tiny_catalog, validation=validation)
    plan = privacy_plan(CONFIG, len(train_texts.texts))
    sel, privacy = result.selection, result.privacy
    assert sel is not None and privacy is not None
    assert 1 <= sel.epochs_run <= CONFIG.epochs and sel.validation_examples == 80
    assert [r.epoch for r in sel.epochs] == list(range(1, sel.epochs_run + 1))
    assert sel.kept_epoch == max(r.epoch for r in sel.epochs if r.best)
    assert sel.stopped_early == (sel.epochs_run < CONFIG.epochs)
    assert result.steps == plan.steps // CONFIG.epochs * sel.epochs_run  # what ran
    assert privacy.steps == plan.steps  # what is accounted: the full schedule
    assert privacy.epsilon == plan.epsilon <= (CONFIG.target_epsilon or 0.0)
    assert privacy.selection_noise_multiplier == plan.selection_noise_multiplier > 0
    assert privacy.selection_releases == CONFIG.epochs
    assert privacy.epsilon_training == plan.epsilon_training
    assert math.isclose(privacy.epsilon_training + privacy.epsilon_selection, privacy.epsilon)
    with pytest.raises(ConfigError, match="validation split"):
        train(CONFIG, train_texts, eval_texts, catalog=tiny_catalog)


def test_train_without_selection_releases_nothing(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    cfg = replace(CONFIG, selection_share=0.0, patience=None, epochs=2)
    result = train(cfg, train_texts, eval_texts, catalog=tiny_catalog, validation=eval_texts)
    assert result.selection is None and result.privacy is not None
    assert result.privacy.epsilon_selection == 0.0
    assert result.privacy.epsilon == result.privacy.epsilon_training
    assert result.privacy.epsilon == accounting.compute_epsilon(
        noise_multiplier=result.privacy.noise_multiplier,
        sample_rate=result.privacy.sample_rate,
        steps=result.privacy.steps,
        delta=result.privacy.delta,
    )


def test_recipe_selects_only_with_enough_validation_rows() -> None:
    base = RecipeInputs(n=2000, target_epsilon=3.0)
    on = choose(replace(base, validation_rows=MIN_VALIDATION_ROWS)).config
    assert on.selection_share == SELECTION_SHARE and on.patience == PATIENCE
    few = choose(replace(base, validation_rows=MIN_VALIDATION_ROWS - 1))
    assert few.config.selection_share == 0.0
    assert "validation rows" in few.choices["selection_share"].reason
    assert choose(replace(base, validation_rows=5, selection="on")).config.selection_share > 0
    none = choose(replace(base, validation_rows=10_000, selection="none"))
    assert none.config.selection_share == 0.0 and none.config.patience is None
    assert choose(base).config.selection_share == 0.0  # no split counts recorded
    assert choose(replace(base, validation_rows=0)).config.selection_share == 0.0
    with pytest.raises(ConfigError, match="validation split"):
        choose(replace(base, validation_rows=0, selection="on"))
    with pytest.raises(ConfigError, match="validation split"):
        choose(replace(base, validation_rows=0, overrides={"selection_share": 0.2}))
    caller = choose(replace(base, validation_rows=500, overrides={"selection_share": 0.3}))
    assert caller.config.selection_share == 0.3
    assert caller.choices["selection_share"].source == "set by the caller"
