"""Training over real HTTP against a real `privet serve` (with its local worker):
upload → DP job → model card → approval by another principal → ledger in order; a worker
SIGKILLed mid-training; budget refusal; no plaintext data or weights on disk."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.e2e.conftest import (
    Server,
    named_person_key,
    project_events,
    start_server,
    stop_server,
    tiny_catalog_file,
)
from tests.jobs.conftest import LONG_JOB, TRAINED, job_body

TINY = "tiny-e2e"


@pytest.fixture(scope="module")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny pinned BERT offered to the server through PRIVET_JOBS_EXTRA_CATALOG."""
    return tiny_catalog_file(tmp_path_factory.mktemp("tiny-e2e"), TINY)


@dataclass
class Team:
    server: Server
    project: str
    engineer: str
    approver: str

    def http(self, key: str | None = None) -> httpx.Client:
        return self.server.client(key)


def _start(tmp_path: Path, catalog: Path, **env: str) -> Server:
    return start_server(
        tmp_path / "home",
        env={
            "PRIVET_JOBS_EXTRA_CATALOG": str(catalog),
            "PRIVET_JOBS_HEARTBEAT_INTERVAL_S": "0.5",
            "PRIVET_JOBS_POLL_INTERVAL_S": "0.3",
            "PRIVET_JOBS_LOCAL_WORKER_RESTART_S": "0.5",
            "PRIVET_LEDGER_POLL_INTERVAL_S": "0.2",
            **env,
        },
    )


def _member(http: httpx.Client, project: str, role: str) -> str:
    binding = http.post(
        f"/v1/projects/{project}/members",
        json={"service_account_name": f"{role}-bot", "role": role},
    )
    assert binding.status_code == 201, binding.text
    key = http.post(
        "/v1/api-keys",
        json={"name": role, "principal_id": binding.json()["principal_id"], "project_id": project},
    )
    assert key.status_code == 201, key.text
    return str(key.json()["key"])


def _team(server: Server) -> Team:
    with server.client() as http:
        project = http.post("/v1/projects", json={"name": "loans"}).json()["id"]
        return Team(
            server,
            project,
            _member(http, project, "ml_engineer"),
            # A named person approves (never a service account, nor the admin behind them).
            named_person_key(server.home, project, "approver", name="risk-officer"),
        )


def _upload(team: Team, rows: list[dict[str, Any]], *, epsilon_total: float) -> dict[str, Any]:
    decl = declarations(privacy_budget={"epsilon_total": epsilon_total, "delta": 1e-5})
    with team.http() as http:
        response = upload(http, None, team.project, to_csv(rows), decl=decl)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _submit(team: Team, version: str, **overrides: Any) -> httpx.Response:
    body = job_body(version, **{"base_model": TINY, **overrides})
    with team.http(team.engineer) as http:
        return http.post(f"/v1/projects/{team.project}/training-jobs", json=body)


def _job(team: Team, job_id: str) -> dict[str, Any]:
    with team.http(team.engineer) as http:
        response = http.get(f"/v1/projects/{team.project}/training-jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait(team: Team, job_id: str, until: Any, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _job(team, job_id)
        if until(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} stuck: {_job(team, job_id)}\n{team.server.logs()[-3000:]}")


def _done(job: dict[str, Any]) -> bool:
    return job["state"] in ("succeeded", "failed", "cancelled")


def _events(team: Team, expect_type: str, timeout: float = 120) -> list[dict[str, Any]]:
    """The project's integrated ledger events, waiting until `expect_type` is in."""
    deadline = time.monotonic() + timeout
    while True:
        with team.http() as http:
            events = project_events(http, team.project)
        if any(e["type"] == expect_type for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.3)


def _of_job(events: list[dict[str, Any]], job_id: str, version_id: str | None = None) -> list[str]:
    return [
        e["type"]
        for e in events
        if e["type"] != "auth.decision"
        and (
            e["objects"].get("training_job") == job_id
            or (version_id is not None and e["objects"].get("model_version") == version_id)
        )
    ]


def _files(root: Path) -> Iterator[Path]:
    return (p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def team(tmp_path: Path, tiny_catalog: Path) -> Iterator[Team]:
    server = _start(tmp_path, tiny_catalog)
    try:
        yield _team(server)
    finally:
        stop_server(server)


def test_dp_training_flow_end_to_end(team: Team) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    rows = make_rows(80)
    rows[7]["text"] += f" {canary}"
    version = _upload(team, rows, epsilon_total=5.0)

    submitted = _submit(team, version["id"])
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]
    job = _wait(team, job_id, _done)
    assert job["state"] == "succeeded", job["reason"]
    assert job["progress"]["step"] == job["progress"]["total_steps"]
    assert 0 < job["result"]["privacy"]["epsilon"] <= 3.0
    version_id = job["model_version_id"]

    # Read the model card (Hugging Face format: YAML metadata + text).
    with team.http(team.engineer) as http:
        card = http.get(f"/v1/projects/{team.project}/model-versions/{version_id}/card").text
    meta = yaml.safe_load(card.split("---\n")[1])
    privacy = meta["privet"]["privacy"]
    assert meta["base_model"] == TINY and privacy["differentially_private"] is True
    assert privacy["epsilon"] == pytest.approx(job["result"]["privacy"]["epsilon"])
    assert meta["privet"]["dataset_versions"][0]["digest"] == version["digest"]

    # A second job that would exceed the budget (3 spent of 5) is refused before training.
    refused = _submit(team, version["id"])
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/privacy-budget-exceeded")
    refused_id = refused.json()["refused_job_id"]

    # The submitter cannot approve its own model; the approver can.
    with team.http(team.engineer) as http:
        own = http.post(f"/v1/projects/{team.project}/model-versions/{version_id}:approve")
    assert own.status_code == 403
    with team.http(team.approver) as http:
        ok = http.post(f"/v1/projects/{team.project}/model-versions/{version_id}:approve")
    assert ok.status_code == 200 and ok.json()["state"] == "approved"

    # Approval also builds the version's drift reference (in the background, from the
    # dataset's evaluation split, decrypted in memory only: the canary check below covers it).
    events = _events(team, "monitoring.reference_set")
    assert _of_job(events, job_id, version_id) == [
        *TRAINED,
        "model_version.approved",
        "monitoring.reference_requested",
        "monitoring.reference_set",
    ]
    assert _of_job(events, refused_id) == ["training_job.submitted", "training_job.refused"]

    # Nothing sensitive at rest: neither the canary nor any stretch of the weights.
    with team.http() as http:
        exported = http.get(f"/v1/projects/{team.project}/model-versions/{version_id}/export")
    assert exported.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(exported.content)) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("model.safetensors"))
        extracted = tar.extractfile(member)
        assert extracted is not None
        weights = extracted.read()
    windows = [weights[i : i + 48] for i in range(len(weights) - 48, 1024, -4093)]
    windows = [w for w in windows if len(set(w)) > 24][:20]
    assert len(windows) >= 5
    for path in _files(team.server.home):
        data = path.read_bytes()
        assert canary.encode() not in data, path
        assert not any(w in data for w in windows), f"plaintext weights in {path}"
    assert canary not in team.server.logs()


def test_worker_sigkill_mid_training(tmp_path: Path, tiny_catalog: Path) -> None:
    server = _start(tmp_path, tiny_catalog, PRIVET_JOBS_HEARTBEAT_TIMEOUT_S="3")
    try:
        team = _team(server)
        version = _upload(team, make_rows(80), epsilon_total=5.0)
        slow = _submit(team, version["id"], **LONG_JOB)
        assert slow.status_code == 201, slow.text
        job_id = slow.json()["id"]
        running = _wait(
            team, job_id, lambda j: (j["progress"] or {}).get("step", 0) > 0 or _done(j)
        )
        assert running["state"] == "running", running
        pid = int(running["worker_id"].rsplit("-", 2)[1])
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()

        failed = _wait(team, job_id, _done, timeout=180)
        assert failed["state"] == "failed"
        assert "stopped sending heartbeats" in failed["reason"]
        reaped_after = time.monotonic() - killed_at
        print(f"SIGKILL → failed in {reaped_after:.1f} s (heartbeat timeout 3 s)")
        # timeout + restarting the local worker (a torch import: slow on a loaded machine)
        assert reaped_after < 120
        with team.http(team.engineer) as http:
            assert http.get(f"/v1/projects/{team.project}/models").json() == []
        # ε stays charged: 3 of 5 are gone, so another 3 no longer fits.
        assert _submit(team, version["id"]).status_code == 409
        events = _events(team, "training_job.failed")
        assert _of_job(events, job_id) == [
            "training_job.submitted",
            "training_job.admitted",
            "privacy_budget.reserved",
            "privacy_budget.charged",
            "training_job.started",
            "training_job.failed",
        ]
        # The restarted local worker runs the next job.
        nxt = _submit(team, version["id"], target_epsilon=2.0)
        assert nxt.status_code == 201
        assert _wait(team, nxt.json()["id"], _done)["state"] == "succeeded"
    finally:
        stop_server(server)


@pytest.mark.slow
def test_minilm_head_strategy_under_two_minutes(team: Team) -> None:
    """The shipped MiniLM-L6 base model, head strategy, ε = 3 (the issue's acceptance run)."""
    version = _upload(team, make_rows(400), epsilon_total=8.0)
    started = time.monotonic()
    submitted = _submit(
        team,
        version["id"],
        base_model="minilm-l6",
        strategy="head",
        epochs=2,
        batch_size=64,
        physical_batch_size=64,
        max_length=32,
        learning_rate=0.01,
    )
    assert submitted.status_code == 201, submitted.text
    job = _wait(team, submitted.json()["id"], _done, timeout=240)
    took = time.monotonic() - started
    assert job["state"] == "succeeded", job["reason"]
    print(f"MiniLM-L6 head, ε=3: {took:.1f} s, accuracy {job['result']['metrics']['accuracy']}")
    assert took < 120
    with team.http(team.approver) as http:
        vid = job["model_version_id"]
        assert (
            http.post(f"/v1/projects/{team.project}/model-versions/{vid}:approve").status_code
            == 200
        )


def _cli(team: Team, key: str, *args: str) -> Any:
    import subprocess

    from tests.e2e.conftest import PRIVET

    env = {**os.environ, "PRIVET_URL": team.server.url, "PRIVET_API_KEY": key, "COLUMNS": "200"}
    return subprocess.run(
        [PRIVET, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_submit_watch_and_models(team: Team, tmp_path: Path) -> None:
    version = _upload(team, make_rows(80), epsilon_total=5.0)
    submit = (
        "train",
        "submit",
        team.project,
        "--dataset-version",
        version["id"],
        "--epsilon",
        "3",
        "--base-model",
        TINY,
    )
    run = _cli(
        team,
        team.engineer,
        *submit,
        "--strategy",
        "full",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--physical-batch-size",
        "16",
        "--max-length",
        "16",
        "--watch",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "succeeded" in run.stdout and "model version" in run.stdout
    listed = _cli(team, team.engineer, "models", "list", team.project)
    assert listed.returncode == 0 and "candidate" in listed.stdout, listed.stderr
    with team.http(team.engineer) as http:
        model = http.get(f"/v1/projects/{team.project}/models").json()[0]
        vid = http.get(f"/v1/projects/{team.project}/models/{model['id']}").json()["versions"][0][
            "id"
        ]
    card = _cli(team, team.engineer, "models", "show", team.project, vid, "--card")
    assert card.returncode == 0 and "## Privacy" in card.stdout
    own = _cli(team, team.engineer, "models", "approve", team.project, vid)
    assert own.returncode == 1 and "403" in own.stderr
    ok = _cli(team, team.approver, "models", "approve", team.project, vid)
    assert ok.returncode == 0 and "approved" in ok.stdout, ok.stderr
    out = tmp_path / "export.tar"
    exported = _cli(
        team, team.server.admin_key, "models", "export", team.project, vid, "--out", str(out)
    )
    assert exported.returncode == 0, exported.stderr
    with tarfile.open(out) as tar:
        assert any(m.name.endswith("README.md") for m in tar.getmembers())
    over = _cli(team, team.engineer, *submit)
    assert over.returncode == 1 and "409" in over.stderr and "left" in over.stderr
