"""Data-parallel DP-SGD on Ray (issue 11, item 2): a 2-worker job on a local Ray instance
(2 CPUs) reports the single-process ε for the same global batch, sample rate and steps,
adds noise once per step, and matches the single-process run under a fixed seed."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from safetensors.torch import load as load_safetensors

from tests.executors.conftest import labelled
from tests.jobs.conftest import TINY


def _config(**overrides: Any) -> Any:
    from privet.training import TrainingConfig

    base: dict[str, Any] = {
        "base_model": TINY,
        "strategy": "full",
        "max_length": 16,
        "epochs": 2,
        "logical_batch_size": 16,
        "physical_batch_size": 8,
        "learning_rate": 0.01,
        "seed": 7,
        "target_epsilon": 3.0,
        "delta": 1e-4,
        "secure_mode": False,
    }
    base.update(overrides)
    return TrainingConfig(**base)


def _weights(result: Any) -> dict[str, torch.Tensor]:
    return dict(load_safetensors(result.weights))


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def runs(ray_local, tiny_model) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One single-process run and Ray runs with 1 and 2 workers, same config and seed."""
    from privet.executors.base import JobSpec
    from privet.executors.ray_executor import RayExecutor
    from privet.executors.settings import ExecutorSettings
    from privet.training import train

    data, held_out = labelled(96), labelled(24, seed=9)
    config = _config()
    executor = RayExecutor(ExecutorSettings(executor="ray", ray_poll_interval_s=0.1))
    events: list[Any] = []
    out = {
        "config": config,
        "single": train(config, data, held_out),
        "ray1": executor.run(JobSpec("job-1w", "proj", workers=1), config, data, held_out),
        "ray2": executor.run(
            JobSpec("job-2w", "proj", workers=2), config, data, held_out, progress=events.append
        ),
        "events": events,
        "n": len(data.texts),
    }
    return out


def test_two_workers_report_the_single_process_epsilon(runs) -> None:  # type: ignore[no-untyped-def]
    from privet.training import compute_epsilon, privacy_plan

    single, two = runs["single"].privacy, runs["ray2"].result.privacy
    plan = privacy_plan(runs["config"], runs["n"])
    assert single is not None and two is not None
    # Same global batch, sample rate and steps → same sigma and the same ε, to the bit.
    assert two.sample_rate == single.sample_rate == plan.sample_rate == 16 / 96
    assert two.steps == single.steps == plan.steps == 12
    assert two.noise_multiplier == single.noise_multiplier == plan.noise_multiplier
    assert two.epsilon == single.epsilon <= 3.0
    assert two.epsilon == compute_epsilon(
        noise_multiplier=two.noise_multiplier,
        sample_rate=two.sample_rate,
        steps=two.steps,
        delta=two.delta,
        accountant=two.accountant,
    )
    # Google's PLD accountant agrees (a second opinion on the global-rate accounting).
    dp_accounting = pytest.importorskip("dp_accounting")
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            two.sample_rate, dp_accounting.GaussianDpEvent(two.noise_multiplier)
        ),
        two.steps,
    )
    pld = dp_accounting.pld.PLDAccountant().compose(event).get_epsilon(two.delta)
    assert abs(pld - two.epsilon) / two.epsilon < 0.02


def test_noise_is_added_once_per_step(runs) -> None:  # type: ignore[no-untyped-def]
    run = runs["ray2"]
    steps = run.result.steps
    assert [r.rank for r in run.ranks] == [0, 1]
    assert [r.steps for r in run.ranks] == [steps, steps]
    assert [r.noise_additions for r in run.ranks] == [steps, 0]
    # The logical batch was split: both ranks trained on part of every Poisson sample.
    assert all(r.examples_seen > 0 for r in run.ranks)
    # Progress reached the worker after every step, with global batch sizes.
    assert [e.step for e in runs["events"]] == list(range(1, steps + 1))
    assert sum(e.examples for e in runs["events"]) == sum(r.examples_seen for r in run.ranks)


def test_two_workers_match_the_single_process_run(runs) -> None:  # type: ignore[no-untyped-def]
    """Same seed: same Poisson samples, the same single noise draw per step, so the same
    update up to float summation order. Noise added on both ranks would move the weights
    by about sigma*C/B per step — orders of magnitude more than the tolerance here."""
    single = _weights(runs["single"])
    one = _weights(runs["ray1"].result)
    two = _weights(runs["ray2"].result)
    assert _max_diff(single, one) < 1e-6
    assert _max_diff(single, two) < 1e-4
    assert runs["ray2"].result.metrics.examples == runs["single"].metrics.examples
    assert runs["ray2"].backend == "gloo" and runs["ray2"].world_size == 2


def test_more_workers_than_the_cluster_can_place_are_refused(ray_local, tiny_model) -> None:  # type: ignore[no-untyped-def]
    from privet.executors.base import JobSpec
    from privet.executors.ray_executor import RayExecutor
    from privet.executors.settings import ExecutorSettings
    from privet.training.trainer import ConfigError

    executor = RayExecutor(ExecutorSettings(executor="ray"))
    with pytest.raises(ConfigError, match="3 workers need"):
        executor.run(JobSpec("job-3w", "proj", workers=3), _config(), labelled(30), labelled(8))
    with pytest.raises(ConfigError, match="workers must be between"):
        executor.run(JobSpec("job-0w", "proj", workers=0), _config(), labelled(30), labelled(8))
