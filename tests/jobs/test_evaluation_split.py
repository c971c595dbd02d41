"""Which split a model's metrics come from, and whether model selection saw it (issue 22):
with no test split the worker evaluates on the validation split, which is optimistic when
selection kept its epoch by scores on that same split. The job's result, the model
version's training record and its card say so; with selection off they say the split
was not used to choose."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from privet.models.card import parse_card
from tests.jobs.conftest import get_job, submit

SELECTION = {"epochs": 3, "selection": "on", "selection_share": 0.2}


@pytest.fixture
def no_test_split() -> Iterator[None]:
    """A dataset source whose versions have no test split (the real rows, minus it)."""
    from privet.jobs import sources

    class WithoutTest(sources.PlatformDatasetSource):
        def load(self, session: Any, runtime: Any, *, facts: Any) -> Any:
            return replace(super().load(session, runtime, facts=facts), test=None)

    sources.set_dataset_source(WithoutTest())
    try:
        yield
    finally:
        sources.set_dataset_source(None)


@pytest.mark.parametrize(
    ("overrides", "seen", "says"),
    [
        (SELECTION, True, "Model selection chose the kept epoch by its scores on this same split"),
        ({"selection": "none"}, False, "model selection did not use it"),
    ],
)
def test_metrics_on_validation_say_whether_selection_saw_it(  # type: ignore[no-untyped-def]
    client, project, engineer, dataset_version, make_worker, no_test_split, overrides, seen, says
) -> None:
    job = submit(client, engineer, project, dataset_version["id"], **overrides)
    assert job.status_code == 201, job.text
    assert make_worker().tick() is True
    done = get_job(client, engineer, project, job.json()["id"])
    assert done["state"] == "succeeded", done["reason"]
    metrics = done["result"]["metrics"]
    assert metrics["evaluated_on"] == "validation"
    assert metrics["evaluation_seen_by_selection"] is seen
    assert (done["result"]["training"]["selection"] is not None) is seen

    url = f"/v1/projects/{project}/model-versions/{done['model_version_id']}"
    version = client.get(url, headers=engineer.headers).json()
    assert version["training"]["evaluated_on"] == "validation"
    assert version["training"]["evaluation_seen_by_selection"] is seen
    card = client.get(f"{url}/card", headers=engineer.headers).text
    assert "On the dataset's recorded `validation` split (the version has no test split" in card
    assert says in card
    assert ("optimistic" in card.split("## Evaluation")[1].split("##")[0]) is seen
    meta = parse_card(card)
    assert meta["privet"]["training"]["evaluation_seen_by_selection"] is seen
    assert meta["model-index"][0]["results"][0]["dataset"]["split"] == "validation"


def test_metrics_on_the_test_split_are_held_out(  # type: ignore[no-untyped-def]
    client, project, engineer, dataset_version, make_worker
) -> None:
    """The ordinary case: a test split, which selection never sees."""
    job = submit(client, engineer, project, dataset_version["id"], **SELECTION)
    assert make_worker().tick() is True
    done = get_job(client, engineer, project, job.json()["id"])
    assert done["state"] == "succeeded", done["reason"]
    assert done["result"]["metrics"]["evaluated_on"] == "test"
    assert done["result"]["metrics"]["evaluation_seen_by_selection"] is False
    url = f"/v1/projects/{project}/model-versions/{done['model_version_id']}/card"
    card = client.get(url, headers=engineer.headers).text
    section = card.split("## Evaluation")[1].split("##")[0]
    assert "On the dataset's recorded `test` split: " in section and "optimistic" not in section


def test_the_card_calls_training_split_metrics_optimistic() -> None:
    """A version with no held-out split at all (labels under 3 rows after an erasure)."""
    from privet.models.card import _evaluated_on

    text = _evaluated_on({"evaluated_on": "train", "evaluation_seen_by_selection": False})
    assert "the model trained on these rows" in text and "optimistic" in text
