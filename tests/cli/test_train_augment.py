"""Augmentation multiplicity through the CLI (issue 22 item 7): the options reach the job,
the recipe record and the trainer; the result records the augmentation and the ε is within
the target like any run."""

from __future__ import annotations

from tests.cli.conftest import TrainCli

RECIPE = (
    "--epsilon", "3", "--strategy", "full", "--epochs", "1", "--batch-size", "16",
    "--physical-batch-size", "16", "--max-length", "16", "--learning-rate", "0.01",
    "--augment-multiplicity", "2", "--augment-word-order", "0.2",
)  # fmt: skip


def test_augmented_job_from_the_cli_records_its_augmentation(train_cli: TrainCli) -> None:
    _, job = train_cli(*RECIPE)
    assert job["state"] == "succeeded", job["reason"]
    choices = job["recipe"]["choices"]
    assert choices["augment_multiplicity"]["value"] == 2
    assert choices["augment_word_order"] == {
        "value": 0.2,
        "source": "set by the caller",
        "reason": "set by the caller",
    }
    assert choices["augment_token_dropout"]["value"] == 0.1  # the recipe's rate for K > 1
    assert job["result"]["training"]["augmentation"] == {
        "multiplicity": 2,
        "token_dropout": 0.1,
        "span_deletion": 0.1,
        "word_order": 0.2,
    }
    assert job["result"]["privacy"]["epsilon"] <= 3.0
