"""`privet train submit --init-from` (warm start) and `privet train history`, against the
app: the request the CLI sends and what it prints."""

from __future__ import annotations

import json
from typing import Any

from tests.cli.conftest import Run, TrainCli

TINY_RECIPE = (
    "--epsilon", "3", "--strategy", "full", "--epochs", "2", "--batch-size", "16",
    "--physical-batch-size", "16", "--max-length", "16", "--learning-rate", "0.01",
)  # fmt: skip


def test_warm_start_and_history_from_the_cli(  # type: ignore[no-untyped-def]
    cli: Run,
    train_cli: TrainCli,
    client: Any,
    project,
    engineer,
    approver,
    dataset_version,
) -> None:
    job, shown_parent = train_cli(*TINY_RECIPE)
    history = json.loads(
        cli("train", "history", project, job, "-o", "json", key=engineer.key).stdout
    )
    assert history["points"] and history["points"][-1]["step"] == history["total_steps"]
    shown = cli("train", "history", project, job, "-o", "table", key=engineer.key)
    assert shown.exit_code == 0 and "per epoch" in shown.stdout

    parent = shown_parent["model_version_id"]
    approved = client.post(
        f"/v1/projects/{project}/model-versions/{parent}:approve", headers=approver.headers
    )
    assert approved.status_code == 200, approved.text
    warm = cli(
        "train", "submit", project, "--dataset-version", dataset_version["id"],
        "--init-from", parent, *TINY_RECIPE, "-q", key=engineer.key,
    ).stdout.strip()  # fmt: skip
    shown_job = json.loads(
        cli("train", "show", project, warm, "-o", "json", key=engineer.key).stdout
    )
    assert shown_job["init_from_model_version_id"] == parent
    assert shown_job["base_model"] == "tiny-test"  # the parent's: --base-model left out
