"""Model selection through the API and the CLI (issue 22 item 4): a job with `--selection
on` stores its per-epoch DP validation releases as history, and its ε split (training,
selection) shows in the result, the model card and the budget ledger; the total is
recomputed independently with Google's PLD accountant."""

from __future__ import annotations

import json
from typing import Any

import dp_accounting
import pytest

from privet.models.card import parse_card
from tests.cli.conftest import Run, TrainCli
from tests.jobs.conftest import TRAINED, ledger_events, submit, types_of

RECIPE = (
    "--epsilon", "3", "--strategy", "full", "--epochs", "3", "--batch-size", "16",
    "--physical-batch-size", "16", "--max-length", "16", "--learning-rate", "0.01",
    "--selection", "on", "--selection-share", "0.2",
)  # fmt: skip


def pld_total(p: dict[str, Any]) -> float:
    """The job's total ε from its recorded numbers, by an accountant independent of Opacus."""
    training = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(
            p["sample_rate"], dp_accounting.GaussianDpEvent(p["noise_multiplier"])
        ),
        p["steps"],
    )
    selection = dp_accounting.SelfComposedDpEvent(
        dp_accounting.GaussianDpEvent(p["selection_noise_multiplier"]), p["selection_releases"]
    )
    acc = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
    acc.compose(dp_accounting.ComposedDpEvent([training, selection]))
    return float(acc.get_epsilon(p["delta"]))


def test_selection_history_card_and_budget_ledger(  # type: ignore[no-untyped-def]
    cli: Run,
    train_cli: TrainCli,
    client: Any,
    runtime: Any,
    project,
    engineer,
) -> None:
    job_id, job = train_cli(*RECIPE)
    assert job["state"] == "succeeded", job["reason"]
    choice = job["recipe"]["choices"]["selection_share"]
    assert choice["value"] == 0.2 and choice["source"] == "set by the caller"
    privacy, training = job["result"]["privacy"], job["result"]["training"]
    assert 0 < privacy["epsilon_selection"] and privacy["epsilon"] <= 3.0
    assert privacy["epsilon_training"] + privacy["epsilon_selection"] == pytest.approx(
        privacy["epsilon"]
    )
    assert privacy["selection_releases"] == 3 and privacy["selection_noise_multiplier"] > 0
    assert privacy["epsilon"] == pytest.approx(pld_total(privacy), rel=0.01)

    history = json.loads(
        cli("train", "history", project, job_id, "-o", "json", key=engineer.key).stdout
    )
    selection = history["selection"]
    assert selection["kept_epoch"] == training["selection"]["kept_epoch"] >= 1
    assert selection["epsilon_selection"] == privacy["epsilon_selection"]
    rows = history["epochs"][: selection["epochs_run"]]
    assert len(rows) == selection["epochs_run"]
    assert all(0.0 <= r["validation_macro_f1"] <= 1.0 for r in rows)
    assert rows[selection["kept_epoch"] - 1]["best"] is True
    assert not any(r["best"] for r in rows[selection["kept_epoch"] :])
    shown = cli("train", "history", project, job_id, "-o", "table", key=engineer.key)
    assert shown.exit_code == 0 and "per epoch" in shown.stdout
    assert f"kept epoch {selection['kept_epoch']}" in shown.stdout

    card = client.get(
        f"/v1/projects/{project}/model-versions/{job['model_version_id']}/card",
        headers=engineer.headers,
    )
    carded = parse_card(card.text)["privet"]["privacy"]
    assert carded["epsilon_selection"] == pytest.approx(privacy["epsilon_selection"])
    assert carded["epsilon_training"] == pytest.approx(privacy["epsilon_training"])
    assert "epsilon selection" in card.text and "includes model selection" in card.text

    events = ledger_events(runtime, project=project)
    assert types_of(events) == [*TRAINED[:-1], "privacy_budget.accounted", TRAINED[-1]]
    (accounted,) = [e for e in events if e["type"] == "privacy_budget.accounted"]
    details = accounted["details"]
    assert float(details["epsilon_charged"]) == 3.0
    assert float(details["epsilon_selection"]) == pytest.approx(
        privacy["epsilon_selection"], rel=1e-5
    )
    assert float(details["epsilon"]) == pytest.approx(privacy["epsilon"], rel=1e-5)


def test_selection_none_refuses_a_share_and_spends_nothing_on_selection(  # type: ignore[no-untyped-def]
    client: Any,
    runtime: Any,
    project,
    engineer,
    dataset_version,
    make_worker,
) -> None:
    bad = submit(client, engineer, project, dataset_version["id"], selection="none",
                 selection_share=0.2)  # fmt: skip
    assert bad.status_code == 422 and "selection_share" in bad.text
    job = submit(client, engineer, project, dataset_version["id"], selection="none").json()
    assert make_worker().tick() is True
    done = client.get(f"/v1/projects/{project}/training-jobs/{job['id']}", headers=engineer.headers)
    privacy = done.json()["result"]["privacy"]
    assert privacy["epsilon_selection"] == 0.0 and privacy["selection_releases"] == 0
    assert privacy["epsilon_training"] == privacy["epsilon"]
    history = client.get(
        f"/v1/projects/{project}/training-jobs/{job['id']}/history", headers=engineer.headers
    ).json()
    assert history["selection"] is None
    assert all(e.get("validation_macro_f1") is None for e in history["epochs"])
    assert types_of(ledger_events(runtime, project=project)) == TRAINED
