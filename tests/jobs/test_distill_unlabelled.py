"""Distillation onto unlabelled texts (issue 22 item 6): the steward uploads texts with no
label column, declared non-personal; a student learns an approved DP teacher's labels on
them, spends no ε on them, and its lineage names the teacher and both datasets. Any other
job on such a version is refused by the rule that says why."""

from __future__ import annotations

from typing import Any

from tests.datasets.conftest import upload
from tests.datasets.test_unlabelled import _csv, _texts, unlabelled_declarations
from tests.jobs.conftest import get_job, submit
from tests.jobs.test_distill import _distil, teacher  # noqa: F401 - fixture

RULE = "jobs.unlabelled.distillation-only"


def _unlabelled_version(client: Any, admin: Any, project: str) -> dict[str, Any]:
    response = upload(
        client, admin.headers, project, _csv(_texts(60)), filename="texts.csv",
        decl=unlabelled_declarations(),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_student_distils_onto_unlabelled_texts(  # type: ignore[no-untyped-def]
    client,
    admin,
    runtime,
    project,
    engineer,
    dataset_version,
    teacher,  # noqa: F811
    make_worker,
) -> None:
    from privet.db import session_scope
    from privet.jobs import budget

    texts = _unlabelled_version(client, admin, project)
    with session_scope(runtime.engine) as session:
        before = budget.budget_status(session, dataset_version_id=dataset_version["id"])
    assert before is not None
    job = submit(client, engineer, project, texts["id"], **_distil(teacher))
    assert job.status_code == 201, job.text
    assert job.json()["epsilon_reserved"] is None
    assert make_worker().tick() is True
    done = get_job(client, engineer, project, job.json()["id"])
    assert done["state"] == "succeeded", done["reason"]
    assert done["result"]["metrics"]["evaluated_on"] == "teacher_test"
    assert done["result"]["training"]["train_examples"] == 54  # train + validation texts

    url = f"/v1/projects/{project}/model-versions"
    teacher_v = client.get(f"{url}/{teacher}", headers=engineer.headers).json()
    student = client.get(f"{url}/{done['model_version_id']}", headers=engineer.headers).json()
    assert student["label_names"] == teacher_v["label_names"]
    assert student["lineage"]["distilled_from_model_version"]["id"] == teacher
    own, theirs = student["dataset_versions"]
    assert own["id"] == texts["id"] and own["unlabelled"] is True
    assert theirs["id"] == dataset_version["id"] and theirs["via_model_version"] == teacher
    assert student["privacy"]["epsilon"] == teacher_v["privacy"]["epsilon"]
    spent = student["privacy"]["epsilon_by_dataset"]
    assert [e["dataset_version_ids"] for e in spent] == [[dataset_version["id"]], [texts["id"]]]
    assert spent[1]["epsilon"] == 0.0
    card = client.get(f"{url}/{student['id']}/card", headers=engineer.headers).text
    assert f"`{texts['id']}`" in card and "(unlabelled texts: distillation input)" in card
    assert f"(through the distillation of model version `{teacher}`)" in card
    assert "warm start" not in card.split("## Training data")[1].split("##")[0]

    with session_scope(runtime.engine) as session:
        after = budget.budget_status(session, dataset_version_id=dataset_version["id"])
        own_budget = budget.budget_status(session, dataset_version_id=texts["id"])
    assert after is not None and after.epsilon_charged == before.epsilon_charged
    assert own_budget is None or (own_budget.epsilon_charged == 0 == own_budget.epsilon_reserved)


def test_any_other_job_on_unlabelled_texts_is_refused(  # type: ignore[no-untyped-def]
    client,
    admin,
    project,
    engineer,
    teacher,  # noqa: F811
) -> None:
    texts = _unlabelled_version(client, admin, project)
    for body in (
        {},  # DP training
        {"private": False, "target_epsilon": None},  # non-private training
        {"init_from_model_version_id": teacher},  # a warm start
    ):
        refused = submit(client, engineer, project, texts["id"], **body)
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["rule"] == RULE and problem["type"].endswith("unlabelled-distillation-only")
        assert "distill_from_model_version_id" in problem["detail"]
    jobs = client.get(f"/v1/projects/{project}/training-jobs", headers=engineer.headers).json()
    assert texts["id"] not in {j["dataset_version_id"] for j in jobs}  # nothing half-written


def test_unlabelled_held_out_texts_measure_agreement_not_labels() -> None:
    """Without the teacher's own test split, an unlabelled version's test texts carry no
    labels to score against: the student is measured by agreement with the teacher."""
    from privet.datasets.split import NO_LABEL
    from privet.jobs.distill import Teacher, eval_set
    from privet.training.data import LabelledTexts
    from privet.training.warmstart import WarmStart

    weights = WarmStart(source="mv-1", label_names=("0", "1"), weights=b"")
    teacher_ = Teacher(
        weights=weights, base_model="tiny", max_length=16, temperature=2.0, record={},
        test=None,
    )  # fmt: skip
    own_test = LabelledTexts(["a", "b"], [NO_LABEL, NO_LABEL])
    agreement = LabelledTexts(["a", "b"], ["0", "1"])
    assert eval_set(teacher_, own_test, agreement) == ("teacher_agreement", agreement)
