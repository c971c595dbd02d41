"""Distillation through the real CLI (issue 22 item 6): the steward uploads unlabelled texts
with `privet datasets upload --unlabelled`, the engineer submits `privet train submit
--distill-from TEACHER` on them; the job is non-private, reserves no ε, and the student's
lineage names the teacher and both datasets. A plain `train submit` on the same texts is
refused with the rule that says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.conftest import Run
from tests.datasets.test_unlabelled import _csv, _texts
from tests.jobs.conftest import (  # noqa: F401 - fixtures
    approver,
    dataset_version,
    engineer,
    job_settings,
    make_worker,
    project,
    tiny_model,
)
from tests.jobs.test_distill import teacher  # noqa: F401 - fixture

RECIPE = (
    "--base-model", "tiny-test", "--strategy", "full", "--epochs", "1", "--batch-size", "16",
    "--physical-batch-size", "16", "--max-length", "16", "--learning-rate", "0.01",
)  # fmt: skip


def _upload_unlabelled(cli: Run, admin: Any, project_id: str, tmp_path: Path) -> str:
    path = tmp_path / "texts.csv"
    path.write_bytes(_csv(_texts(60)))
    result = cli(
        "datasets", "upload", str(path), "--project", project_id, "--text-column", "text",
        "--unlabelled", "--no-personal-data", "--purpose", "credit_scoring",
        "--legal-basis", "contract", "--retention-days", "30", "--name", "texts",
        key=admin.key,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "unlabelled (distillation input only)" in result.stdout
    shown = cli("datasets", "list", "--project", project_id, "--json", key=admin.key)
    dataset = next(d for d in json.loads(shown.stdout) if d["name"] == "texts")
    version = cli(
        "datasets", "show", dataset["id"], "--project", project_id, "--version", "1", "--json",
        key=admin.key,
    )  # fmt: skip
    data = json.loads(version.stdout)
    assert data["declarations"]["unlabelled"] is True and data["label_counts"] == {}
    return str(data["id"])


def test_distillation_from_the_cli_onto_unlabelled_texts(  # type: ignore[no-untyped-def]
    cli: Run,
    client: Any,
    admin: Any,
    tmp_path: Path,
    project,  # noqa: F811
    engineer,  # noqa: F811
    dataset_version,  # noqa: F811
    teacher,  # noqa: F811
    make_worker,  # noqa: F811
) -> None:
    texts = _upload_unlabelled(cli, admin, project, tmp_path)
    refused = cli(
        "train", "submit", project, "--dataset-version", texts, "--epsilon", "3", *RECIPE,
        key=engineer.key,
    )  # fmt: skip
    assert refused.exit_code != 0
    assert "jobs.unlabelled.distillation-only" in refused.output

    job_id = cli(
        "train", "submit", project, "--dataset-version", texts, "--distill-from", teacher,
        "--temperature", "3", *RECIPE, "-q", key=engineer.key,
    ).stdout.strip()  # fmt: skip
    assert make_worker().tick() is True
    job = json.loads(cli("train", "show", project, job_id, "-o", "json", key=engineer.key).stdout)
    assert job["state"] == "succeeded", job["reason"]
    assert job["private"] is False and job["target_epsilon"] is None
    assert job["params"]["distill_from_model_version_id"] == teacher
    assert job["result"]["privacy"] is None  # the student's own training spent nothing

    url = f"/v1/projects/{project}/model-versions"
    student = client.get(f"{url}/{job['model_version_id']}", headers=engineer.headers).json()
    entry = student["lineage"]["distilled_from_model_version"]
    assert entry["id"] == teacher and entry["temperature"] == 3.0
    assert [d["id"] for d in student["dataset_versions"]] == [texts, dataset_version["id"]]
    assert student["privacy"]["epsilon_by_dataset"][1]["epsilon"] == 0.0
