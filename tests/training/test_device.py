"""Devices and precision (issue 21 item 1): the device settings, their start-up checks, and
DP-SGD under bf16 autocast (on the CPU: there is no GPU here; the CUDA paths are the same
code with another `torch.device`)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from privet.executors.base import LocalExecutor, local_world, ray_device_spec
from privet.executors.settings import ExecutorSettings
from privet.inference.settings import InferenceSettings
from privet.jobs.records import training_record
from privet.training.bookkeeping import BookKeepingClipper
from privet.training.catalog import Catalog, load_base_model
from privet.training.data import LabelledTexts, encode
from privet.training.device import (
    DeviceError,
    allocated_bytes,
    check_precision,
    describe,
    resolve_device,
)
from privet.training.strategies import Strategy, apply_strategy
from privet.training.trainer import ConfigError, train
from privet.training.world import World
from tests.training.conftest import TINY_CONFIG

CONFIG = replace(TINY_CONFIG, strategy="full", epochs=1)
S = "PRIVET_TRAINING_DEVICE"


def test_cpu_and_auto_resolve_here() -> None:
    assert resolve_device("cpu", setting=S) == torch.device("cpu")
    auto = resolve_device("auto", setting=S)
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert describe(torch.device("cpu")) == "cpu" and allocated_bytes(torch.device("cpu")) == 0


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:7"])
def test_cuda_without_a_gpu_is_refused_with_what_to_set(
    spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if torch.cuda.is_available():  # a machine with a GPU plays one without (none here)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError) as info:
        resolve_device(spec, setting=S)
    message = str(info.value)
    assert f"{S}={spec}" in message and "no CUDA device" in message
    assert f"set {S}=cpu or auto" in message
    with pytest.raises(DeviceError, match="no CUDA device"):
        local_world(ExecutorSettings(training_device=spec))


def test_cuda_index_beyond_the_devices_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one path that needs a GPU to reach: a machine with one, asked for cuda:7. Only
    the two questions torch is asked are answered here (no GPU to ask)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match=r"sees 1 CUDA device\(s\) \(cuda:0 to cuda:0\)"):
        resolve_device("cuda:7", setting=S)
    assert resolve_device("cuda:0", setting=S) == torch.device("cuda", 0)


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "CUDA", "cuda:x", "mps", ""])
def test_device_settings_are_checked_when_read(spec: str) -> None:
    with pytest.raises(ValidationError):
        ExecutorSettings(training_device=spec)
    with pytest.raises(ValidationError):
        InferenceSettings(device=spec)
    with pytest.raises(DeviceError, match="is not a device"):
        resolve_device(spec, setting=S)


def test_precision_is_checked() -> None:
    cpu = torch.device("cpu")
    assert check_precision("bf16", cpu, setting="P") == "bf16"
    with pytest.raises(DeviceError, match="fp32, bf16"):
        check_precision("fp16", cpu, setting="P")
    with pytest.raises(ValidationError):
        ExecutorSettings(training_precision="fp16")


def test_ray_device_follows_the_reserved_gpus() -> None:
    assert ray_device_spec(ExecutorSettings(training_device="auto")) == "cpu"
    gpus = ExecutorSettings(training_device="auto", ray_gpus_per_worker=1)
    assert ray_device_spec(gpus) == "cuda"
    with pytest.raises(DeviceError, match="PRIVET_RAY_GPUS_PER_WORKER is 0"):
        ray_device_spec(ExecutorSettings(training_device="cuda"))
    with pytest.raises(DeviceError, match="only the GPU Ray reserved"):
        ray_device_spec(ExecutorSettings(training_device="cuda:1", ray_gpus_per_worker=1))
    with pytest.raises(DeviceError, match="a GPU it never uses"):
        ray_device_spec(ExecutorSettings(training_device="cpu", ray_gpus_per_worker=1))


def test_the_local_executor_trains_where_the_settings_say() -> None:
    world = LocalExecutor(local_world(ExecutorSettings(training_precision="bf16"))).world
    assert world.precision == "bf16"
    assert world.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


# --- DP-SGD under bf16 autocast ------------------------------------------------------------


def _flat_grad(model: nn.Module) -> torch.Tensor:
    return torch.cat(
        [p.grad.reshape(-1).double() for p in model.parameters() if p.grad is not None]
    )


def test_clipping_bound_holds_under_bf16_autocast(
    tiny_catalog: Catalog, train_texts: LabelledTexts
) -> None:
    """Each example's clipped gradient, from a bf16 forward, has norm at most C (to fp32
    rounding), and the norms are those of the gradients actually summed: the per-sample
    norms, the clipping and the sum run in fp32 whatever the forward's dtype."""
    loaded = load_base_model("tiny", num_labels=2, seed=3, catalog=tiny_catalog)
    model = loaded.model
    apply_strategy(model, Strategy.parse("full"))
    model.train()
    enc = encode(train_texts, loaded.tokenizer, label_names=["neg", "pos"], max_length=12)
    batch = enc.batch(range(12))
    batch["labels"][::2] = 1 - batch["labels"][::2]
    clip = 0.05  # far below every example's norm: every one is clipped
    clipper = BookKeepingClipper(model, max_grad_norm=clip)
    try:
        for i in range(12):
            one = {k: v[i : i + 1] for k, v in batch.items()}
            model.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(**{k: v for k, v in one.items() if k != "labels"}).logits
            assert logits.dtype == torch.bfloat16  # the forward really ran in bf16
            losses = nn.functional.cross_entropy(logits.float(), one["labels"], reduction="none")
            norms = clipper.backward(losses)
            assert norms.dtype == torch.float32 and float(norms[0]) > clip
            assert all(p.grad.dtype == torch.float32 for p in model.parameters())
            total = _flat_grad(model).norm().item()
            assert total <= clip * (1 + 1e-5), (i, total, clip)
            assert total == pytest.approx(clip, rel=1e-3)  # clipped to C, not to less
    finally:
        clipper.close()


def test_batch_clipping_under_bf16_matches_one_at_a_time(
    tiny_catalog: Catalog, train_texts: LabelledTexts
) -> None:
    """The batched clipped sum equals the sum of the examples' clipped gradients, each
    computed alone (bf16 forward both times): no example's weight leaks into another's."""
    loaded = load_base_model("tiny", num_labels=2, seed=3, catalog=tiny_catalog)
    apply_strategy(loaded.model, Strategy.parse("full"))
    enc = encode(train_texts, loaded.tokenizer, label_names=["neg", "pos"], max_length=12)
    batch = enc.batch(range(8))
    clip = 0.05

    def clipped(model: nn.Module, part: dict[str, torch.Tensor]) -> torch.Tensor:
        clipper = BookKeepingClipper(model, max_grad_norm=clip)
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(**{k: v for k, v in part.items() if k != "labels"}).logits
        clipper.backward(
            nn.functional.cross_entropy(logits.float(), part["labels"], reduction="none")
        )
        clipper.close()
        return _flat_grad(model)

    model = copy.deepcopy(loaded.model).train()
    together = clipped(model, batch)
    alone = sum(clipped(model, {k: v[i : i + 1] for k, v in batch.items()}) for i in range(8))
    assert isinstance(alone, torch.Tensor)
    assert together.norm().item() <= 8 * clip * (1 + 1e-5)
    assert torch.allclose(together, alone, rtol=2e-2, atol=1e-5)


def test_train_in_bf16_records_device_and_precision(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    world = World(precision="bf16")
    result = train(CONFIG, train_texts, eval_texts, catalog=tiny_catalog, world=world)
    assert result.precision == "bf16" and result.device == "cpu"
    assert result.privacy is not None and result.privacy.epsilon <= CONFIG.target_epsilon + 1e-9
    record = training_record(result, "test")
    assert record["device"] == "cpu" and record["precision"] == "bf16"
    fp32 = train(CONFIG, train_texts, eval_texts, catalog=tiny_catalog)
    assert fp32.precision == "fp32" and fp32.device == "cpu"
    assert fp32.privacy == result.privacy  # the guarantee does not depend on the precision
    assert fp32.weights_sha256 != result.weights_sha256  # the forward really differed


def test_bf16_refuses_opacus_grad_sample_modes(
    tiny_catalog: Catalog, train_texts: LabelledTexts, eval_texts: LabelledTexts
) -> None:
    world = World(precision="bf16")
    for mode in ("ghost", "hooks"):
        with pytest.raises(ConfigError, match="bf16 mixed precision needs grad_sample_mode bk"):
            train(
                replace(CONFIG, grad_sample_mode=mode),
                train_texts,
                eval_texts,
                catalog=tiny_catalog,
                world=world,
            )


# --- serving, and the start-up refusals of the commands -----------------------------------


def test_classifier_serves_on_the_chosen_device(tiny_catalog: Catalog) -> None:
    from privet.inference.classifier import Classifier

    loaded = load_base_model("tiny", num_labels=2, seed=3, catalog=tiny_catalog)
    device = resolve_device("cpu", setting="PRIVET_INFERENCE_DEVICE")
    clf = Classifier(loaded.model, loaded.tokenizer, ["neg", "pos"], max_length=12, device=device)
    assert clf.device == device and next(clf.model.parameters()).device == device
    assert clf.device_bytes == 0 and clf.nbytes > 0  # no GPU memory held on the CPU
    scores = clf.predict(["good film", "bad film", "fine"])  # one batch, one forward pass
    assert len(scores) == 3 and all(abs(sum(s.probabilities) - 1) < 1e-5 for s in scores)


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        (["serve", "--no-worker"], "PRIVET_INFERENCE_DEVICE"),
        (["serve"], "PRIVET_TRAINING_DEVICE"),
    ],
)
def test_serve_refuses_a_device_that_is_not_there(
    command: list[str], variable: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from privet.cli.main import app as cli_app
    from privet.config import clear_settings_caches

    monkeypatch.setenv("PRIVET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(variable, "cuda:99")
    clear_settings_caches()
    res = CliRunner().invoke(cli_app, command)
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert f"{variable}=cuda:99" in text and f"set {variable}" in text
    assert not (tmp_path / "home").exists()  # refused before anything was written
