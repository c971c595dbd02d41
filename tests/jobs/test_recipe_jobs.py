"""Jobs with the auto recipe (issue 22): unset hyperparameters are chosen at admission from
the version's public facts, each with its reason in the job record; a caller's field wins;
class balance reaches the trainer; the worst class shows in the result and the card."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.jobs.conftest import TINY


def _post(client: Any, caller: Any, project: str, body: dict[str, Any]) -> Any:
    return client.post(f"/v1/projects/{project}/training-jobs", json=body, headers=caller.headers)


def test_a_job_without_hyperparameters_gets_the_auto_recipe_with_reasons(
    client, project, engineer, dataset_version
) -> None:  # type: ignore[no-untyped-def]
    from privet.jobs.schemas import TrainingJobCreate
    from privet.training.recipe import AUTO, CALLER

    body = {"dataset_version_id": dataset_version["id"], "base_model": TINY, "target_epsilon": 3.0}
    response = _post(client, engineer, project, {**body, "max_length": 16})
    assert response.status_code == 201, response.text
    job = response.json()
    choices = job["recipe"]["choices"]
    for field in ("strategy", "epochs", "logical_batch_size", "learning_rate", "max_grad_norm"):
        assert choices[field]["source"] == AUTO, field
        assert len(choices[field]["reason"]) > 10, field
    assert job["params"]["epochs"] == choices["epochs"]["value"]
    assert job["params"]["batch_size"] == choices["logical_batch_size"]["value"]
    assert job["recipe"]["inputs"]["target_epsilon"] == 3.0
    assert choices["delta"]["source"] == AUTO and choices["delta"]["value"] == 1e-5
    assert job["recipe"]["inputs"]["n"] < 60  # the training split, not every row
    TrainingJobCreate.model_validate(job["params"])  # a retraining can resubmit them

    shown = client.get(
        f"/v1/projects/{project}/training-jobs/{job['id']}", headers=engineer.headers
    ).json()
    assert shown["recipe"] == job["recipe"]

    explicit = _post(
        client,
        engineer,
        project,
        {**body, "epochs": 2, "dropout": 0.2, "label_smoothing": 0.1, "weight_decay": 0.01},
    ).json()
    for field, value in (("epochs", 2), ("dropout", 0.2), ("label_smoothing", 0.1)):
        assert explicit["recipe"]["choices"][field] == {
            "value": value,
            "source": CALLER,
            "reason": CALLER,
        }
        assert explicit["params"][field] == value
    assert explicit["recipe"]["choices"]["weight_decay"]["value"] == 0.01
    assert explicit["recipe"]["choices"]["learning_rate"]["source"] == AUTO


def test_out_of_range_regularisation_is_refused(client, project, engineer, dataset_version) -> None:  # type: ignore[no-untyped-def]
    body = {"dataset_version_id": dataset_version["id"], "base_model": TINY, "target_epsilon": 3.0}
    for field, value in (("dropout", 1.0), ("label_smoothing", -0.1), ("class_balance", "x")):
        assert _post(client, engineer, project, {**body, field: value}).status_code == 422


def test_an_imbalanced_version_trains_with_logit_adjustment_and_reports_the_worst_class(
    client, admin, project, engineer, make_worker
) -> None:  # type: ignore[no-untyped-def]
    rows = make_rows(80, labels=("0", "0", "0", "0", "0", "1"))
    decl = declarations(privacy_budget={"epsilon_total": 8.0, "delta": 1e-5})
    version = upload(client, admin.headers, project, to_csv(rows), decl=decl)
    assert version.status_code == 201, version.text
    body = {
        "dataset_version_id": version.json()["id"],
        "base_model": TINY,
        "target_epsilon": 3.0,
        "max_length": 16,
        "epochs": 3,
    }
    weighted = _post(client, engineer, project, {**body, "class_balance": "on"}).json()
    weights = weighted["recipe"]["choices"]["class_weights"]["value"]
    assert weights["1"] == 1.0 and 0 < weights["0"] < 1.0
    assert weighted["params"]["class_balance"] == "on"
    assert weighted["recipe"]["choices"]["logit_adjustment"]["value"] == []
    cancelled = client.post(
        f"/v1/projects/{project}/training-jobs/{weighted['id']}:cancel", headers=engineer.headers
    )
    assert cancelled.status_code == 200, cancelled.text  # the worker runs the next one
    auto = _post(client, engineer, project, body).json()  # rarest ~17 %, not < 10 %: none
    assert auto["params"]["class_balance"] == "none"
    assert auto["recipe"]["choices"]["logit_adjustment"]["value"] == []
    cancelled = client.post(
        f"/v1/projects/{project}/training-jobs/{auto['id']}:cancel", headers=engineer.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    job = _post(client, engineer, project, {**body, "class_balance": "logit_adjust"}).json()
    offsets = job["recipe"]["choices"]["logit_adjustment"]["value"]
    counts = job["recipe"]["inputs"]["label_counts"]
    total = sum(counts.values())
    assert offsets == pytest.approx({k: math.log(c / total) for k, c in counts.items()})
    assert "Menon" in job["recipe"]["choices"]["logit_adjustment"]["reason"]
    assert job["recipe"]["choices"]["class_weights"]["value"] == []
    assert job["params"]["class_balance"] == "logit_adjust"
    assert make_worker().tick() is True
    done = client.get(
        f"/v1/projects/{project}/training-jobs/{job['id']}", headers=engineer.headers
    ).json()
    assert done["state"] == "succeeded", done["reason"]
    assert done["result"]["training"]["logit_adjustment"] == pytest.approx(offsets)
    assert done["result"]["training"]["class_weights"] is None
    assert done["result"]["metrics"]["worst_class"] in ("0", "1")
    card = client.get(
        f"/v1/projects/{project}/model-versions/{done['model_version_id']}/card",
        headers=engineer.headers,
    ).text
    assert "Worst class: **" in card and "| class | precision | recall | F1 | support |" in card


def test_augmentation_is_a_recorded_job_field_and_bad_values_are_refused(
    client, project, engineer, dataset_version
) -> None:  # type: ignore[no-untyped-def]
    from privet.training.recipe import AUTO, CALLER

    body = {"dataset_version_id": dataset_version["id"], "base_model": TINY, "target_epsilon": 3.0}
    plain = _post(client, engineer, project, body).json()
    off = plain["recipe"]["choices"]["augment_multiplicity"]
    assert off["value"] == 1 and off["source"] == AUTO and off["reason"].startswith("off")
    job = _post(client, engineer, project, {**body, "augment_multiplicity": 4}).json()
    choices = job["recipe"]["choices"]
    assert choices["augment_multiplicity"] == {"value": 4, "source": CALLER, "reason": CALLER}
    for field in ("augment_token_dropout", "augment_span_deletion", "augment_word_order"):
        assert choices[field]["value"] == 0.1 and choices[field]["source"] == AUTO
        assert job["params"][field] == 0.1
    assert job["params"]["augment_multiplicity"] == 4
    jobs_before = client.get(
        f"/v1/projects/{project}/training-jobs", headers=engineer.headers
    ).json()
    identical = _post(
        client,
        engineer,
        project,
        {
            **body,
            "augment_multiplicity": 2,
            "augment_token_dropout": 0,
            "augment_span_deletion": 0,
            "augment_word_order": 0,
        },
    )
    assert identical.status_code in (400, 422), identical.text
    assert "augmentation rate above 0" in identical.text
    for field, value in (("augment_multiplicity", 17), ("augment_word_order", 0.6)):
        assert _post(client, engineer, project, {**body, field: value}).status_code == 422
    jobs_after = client.get(
        f"/v1/projects/{project}/training-jobs", headers=engineer.headers
    ).json()
    assert jobs_after == jobs_before  # nothing half-written, no ε reserved


def test_auto_takes_logit_adjustment_for_a_rare_class_from_the_version_label_counts(
    client, admin, project, engineer
) -> None:  # type: ignore[no-untyped-def]
    """Resolved at admission from the split's label counts alone, with the rule in the reason
    (the rarest class under 10 % of the training rows; training/README.md)."""
    rows = make_rows(200, labels=("0",) * 19 + ("1",))
    decl = declarations(privacy_budget={"epsilon_total": 8.0, "delta": 1e-5})
    version = upload(client, admin.headers, project, to_csv(rows), decl=decl)
    assert version.status_code == 201, version.text
    body = {"dataset_version_id": version.json()["id"], "base_model": TINY, "target_epsilon": 3.0}
    job = _post(client, engineer, project, body).json()
    counts = job["recipe"]["inputs"]["label_counts"]
    total = sum(counts.values())
    assert counts["1"] / total < 0.1
    assert job["params"]["class_balance"] == "logit_adjust"
    choice = job["recipe"]["choices"]["logit_adjustment"]
    assert choice["source"] == "auto" and "under 10%" in choice["reason"]
    assert choice["value"] == pytest.approx({k: math.log(c / total) for k, c in counts.items()})
    assert job["recipe"]["choices"]["class_weights"]["value"] == []
