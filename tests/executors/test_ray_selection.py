"""Model selection does not run on the Ray executor, and a job's record says so: where
jobs train on Ray, `selection: auto` resolves to none with that reason and an explicit
`selection: on` is refused at admission (422 naming the rule); locally it runs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jobs.conftest import submit


@pytest.fixture
def on_ray(monkeypatch: pytest.MonkeyPatch) -> Any:
    """This process's executor setting (read at admission) switched to Ray."""
    from privet.config import clear_settings_caches

    def switch(executor: str) -> None:
        monkeypatch.setenv("PRIVET_EXECUTOR", executor)
        clear_settings_caches()

    yield switch
    monkeypatch.delenv("PRIVET_EXECUTOR", raising=False)
    clear_settings_caches()


def test_selection_on_ray_is_resolved_to_none_or_refused(  # type: ignore[no-untyped-def]
    client, project, engineer, dataset_version, on_ray
) -> None:
    on_ray("local")
    local = submit(client, engineer, project, dataset_version["id"], selection="on")
    assert local.status_code == 201, local.text
    assert local.json()["recipe"]["choices"]["selection_share"]["value"] > 0

    on_ray("ray")
    refused = submit(client, engineer, project, dataset_version["id"], selection="on")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["rule"] == "jobs.selection.local-executor" and problem["field"] == "selection"
    assert "Ray" in problem["detail"]
    shared = submit(client, engineer, project, dataset_version["id"], selection_share=0.2)
    assert shared.status_code == 422 and shared.json()["rule"] == problem["rule"]

    auto = submit(client, engineer, project, dataset_version["id"], selection="auto")
    assert auto.status_code == 201, auto.text
    job = auto.json()
    choice = job["recipe"]["choices"]["selection_share"]
    assert choice["value"] == 0.0 and "Ray" in choice["reason"]
    assert "Ray" in job["recipe"]["choices"]["patience"]["reason"]
    assert job["params"]["selection"] == "none" and job["params"]["selection_share"] == 0.0
