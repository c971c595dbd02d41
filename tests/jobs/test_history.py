"""A job's training history: loss and ε per step (evenly thinned to at most 1,000 points,
always ending at the last step), a summary per epoch; read like the job itself."""

from __future__ import annotations

import itertools
import math

from tests.jobs.conftest import get_job, submit


def _events(total: int, epochs: int, stop: int | None = None):  # type: ignore[no-untyped-def]
    from privet.training.progress import ProgressEvent

    per_epoch = total // epochs
    for step in range(1, (stop or total) + 1):
        yield ProgressEvent(
            step=step,
            total_steps=total,
            epoch=(step - 1) // per_epoch + 1,
            epochs=epochs,
            loss=float("nan") if step % 7 == 0 else 1.0 / step,
            epsilon=math.sqrt(step),
            examples=16,
        )


def test_a_long_run_keeps_at_most_1000_evenly_spaced_points() -> None:
    from privet.jobs.history import MAX_POINTS, HistoryRecorder

    recorder = HistoryRecorder()
    for event in _events(12_345, epochs=5):
        recorder.add(event)
    curve = recorder.curve()
    assert len(curve) <= MAX_POINTS
    steps = [p["step"] for p in curve]
    assert steps[0] == 1 and steps[-1] == 12_345
    gaps = {b - a for a, b in itertools.pairwise(steps[1:-1])}
    assert len(gaps) == 1  # evenly spaced between the first and the last
    assert all(p["loss"] is None for p in curve if p["step"] % 7 == 0)  # NaN is stored as null
    epochs = recorder.epoch_summaries()
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5]
    assert sum(e["steps"] for e in epochs) == 12_345  # summaries count every step
    assert epochs[-1]["epsilon"] == math.sqrt(12_345)


def test_a_short_run_keeps_every_step_and_a_stopped_one_ends_where_it_stopped() -> None:
    from privet.jobs.history import HistoryRecorder

    short = HistoryRecorder()
    for event in _events(40, epochs=2):
        short.add(event)
    assert [p["step"] for p in short.curve()] == list(range(1, 41))

    stopped = HistoryRecorder()
    for event in _events(50_000, epochs=2, stop=1_234):
        stopped.add(event)
    assert stopped.curve()[-1]["step"] == 1_234 and len(stopped.curve()) <= 1000


def test_history_of_a_tiny_job(  # type: ignore[no-untyped-def]
    client, make_caller, admin, project, engineer, dataset_version, make_worker
) -> None:
    job = submit(client, engineer, project, dataset_version["id"]).json()
    path = f"/v1/projects/{project}/training-jobs/{job['id']}/history"
    queued = client.get(path, headers=engineer.headers)
    assert queued.status_code == 200 and queued.json()["points"] == []
    assert make_worker().tick() is True
    done = get_job(client, engineer, project, job["id"])
    assert done["state"] == "succeeded", done["reason"]

    history = client.get(path, headers=engineer.headers).json()
    points = history["points"]
    assert history["total_steps"] == done["progress"]["total_steps"] == len(points)
    assert [p["step"] for p in points] == list(range(1, len(points) + 1))
    eps = [p["epsilon"] for p in points]
    assert all(a <= b for a, b in itertools.pairwise(eps))
    reported = done["result"]["privacy"]["epsilon"]
    assert history["epsilon"] == reported and math.isclose(eps[-1], reported, rel_tol=1e-9)
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert history["epochs"][-1]["epsilon"] == eps[-1]
    assert "validation" in history["note"]  # says why no validation metric is released

    other = client.post("/v1/projects", json={"name": "other"}, headers=admin.headers).json()
    outsider = make_caller("ml_engineer", other["id"], name="outsider")
    assert client.get(path, headers=outsider.headers).status_code == 404
    application = make_caller("predictor", project, name="scoring-app")
    refused = client.get(path, headers=application.headers)
    assert refused.status_code == 403 and "training_job.read" in refused.text
