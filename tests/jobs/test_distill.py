"""Distillation: a student trains on an approved DP teacher's soft labels over texts the
steward declared non-personal. Its card and lineage name the teacher and the teacher's
datasets, its ε is the teacher's (post-processing) and no budget is charged; admission
refuses a teacher that is not approved or of another project, personal texts, and a
request that asks for DP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.jobs.conftest import TINY, get_job, ledger_events, submit, upload_version
from tests.jobs.test_warm_start import _approve, _trained_version


def _unlabelled(client: Any, admin: Any, project: str, **decl: Any) -> dict[str, Any]:
    """Texts the steward declares non-personal (the label column is there, and ignored)."""
    personal = decl.pop("contains_personal_data", False)
    name = decl.pop("name", "public-texts")
    body = declarations(name=name, contains_personal_data=personal, **decl)
    if not personal:
        body.pop("subject_id_column", None)
        body["data_categories"] = []
    rows = make_rows(60, seed=11, labels=("a", "b"))
    columns = ("text", "label") if not personal else ("text", "label", "customer")
    response = upload(client, admin.headers, project, to_csv(rows, columns), decl=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _distil(teacher: str, **extra: Any) -> dict[str, Any]:
    return {"distill_from_model_version_id": teacher, "private": False, "target_epsilon": None}


@pytest.fixture
def teacher(client, project, engineer, approver, dataset_version, make_worker) -> str:  # type: ignore[no-untyped-def]
    version_id = _trained_version(client, project, engineer, dataset_version["id"], make_worker)
    _approve(client, approver, project, version_id)
    return version_id


def test_distilled_student_lineage_and_epsilon(  # type: ignore[no-untyped-def]
    client, admin, runtime, project, engineer, dataset_version, teacher, make_worker
) -> None:
    from privet.db import session_scope
    from privet.jobs import budget

    texts = _unlabelled(client, admin, project)
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
    student = done["model_version_id"]

    url = f"/v1/projects/{project}/model-versions"
    teacher_v = client.get(f"{url}/{teacher}", headers=engineer.headers).json()
    version = client.get(f"{url}/{student}", headers=engineer.headers).json()
    assert version["state"] == "candidate" and version["base_model"] == TINY
    assert version["label_names"] == teacher_v["label_names"]
    entry = version["lineage"]["distilled_from_model_version"]
    assert entry["id"] == teacher and entry["dataset_versions"] == [dataset_version["id"]]
    assert entry["epsilon"] == teacher_v["privacy"]["epsilon"] and entry["temperature"] == 2.0
    assert [d["id"] for d in version["dataset_versions"]] == [texts["id"], dataset_version["id"]]
    assert version["dataset_versions"][1]["via_model_version"] == teacher
    # the student's ε is the teacher's: post-processing, and its own texts paid nothing
    assert version["private"] is True
    assert version["privacy"]["epsilon"] == teacher_v["privacy"]["epsilon"]
    assert version["privacy"]["delta"] == teacher_v["privacy"]["delta"]
    spent = version["privacy"]["epsilon_by_dataset"]
    assert [e["dataset_version_ids"] for e in spent] == [[dataset_version["id"]], [texts["id"]]]
    assert spent[1]["epsilon"] == 0.0
    card = client.get(f"{url}/{student}/card", headers=engineer.headers).text
    assert f"Distilled from the DP model version `{teacher}`" in card
    assert "distilled from model version" in card

    with session_scope(runtime.engine) as session:
        after = budget.budget_status(session, dataset_version_id=dataset_version["id"])
        own = budget.budget_status(session, dataset_version_id=texts["id"])
    assert after is not None and after.epsilon_charged == before.epsilon_charged
    assert len(after.entries) == len(before.entries)
    assert own is None or (own.epsilon_charged == 0 and own.epsilon_reserved == 0)
    events = ledger_events(runtime, project=project)
    submitted = [
        e
        for e in events
        if e["type"] == "training_job.submitted" and e["objects"]["training_job"] == done["id"]
    ]
    assert submitted[0]["objects"]["teacher_model_version"] == teacher
    registered = [
        e
        for e in events
        if e["type"] == "model_version.registered" and e["objects"]["model_version"] == student
    ]
    assert registered[0]["objects"]["teacher_model_version"] == teacher


def test_student_learns_the_teachers_distributions(  # type: ignore[no-untyped-def]
    client, admin, runtime, project, engineer, teacher, make_worker
) -> None:
    """On the student's texts, the trained student's tempered distributions are far
    closer (KL) to the teacher's than those of a student that barely moved from its
    random head: the soft labels carried what the teacher outputs."""
    texts = _unlabelled(client, admin, project)
    students = {}
    for name, rate in (("trained", 0.05), ("untrained", 1e-9)):
        body = {**_distil(teacher), "epochs": 8, "learning_rate": rate, "seed": 3}
        body["head_learning_rate"] = rate
        job = submit(client, engineer, project, texts["id"], **body)
        assert job.status_code == 201, job.text
        assert make_worker().tick() is True
        done = get_job(client, engineer, project, job.json()["id"])
        assert done["state"] == "succeeded", done["reason"]
        students[name] = done["model_version_id"]
    trained = _kl(runtime, project, teacher, students["trained"], texts)
    untrained = _kl(runtime, project, teacher, students["untrained"], texts)
    assert trained < 0.5 * untrained, (trained, untrained)


def _kl(runtime, project, teacher, student, texts) -> float:  # type: ignore[no-untyped-def]
    """Mean KL(teacher ‖ student) of their distributions at T = 2 over the texts."""
    import torch

    from privet.db import session_scope
    from privet.jobs.sources import get_dataset_source
    from privet.models import weights
    from privet.training.data import encode

    logits = []
    with session_scope(runtime.engine) as session:
        source = get_dataset_source()
        facts = source.facts(session, project_id=project, version_id=texts["id"])
        train = source.load(session, runtime, facts=facts).train
        for version_id in (teacher, student):
            loaded = weights.load_version(
                session, runtime=runtime, project_id=project, version_id=version_id,
                require_approved=False,
            )  # fmt: skip
            built = loaded.build()
            names = list(loaded.label_names)
            data = type(train)(list(train.texts), [names[0]] * len(train.texts))
            enc = encode(data, built.tokenizer, label_names=names, max_length=16, model=built.model)
            batch = enc.batch(range(len(enc)))
            batch.pop("labels")
            built.model.eval()
            with torch.no_grad():
                logits.append(built.model(**batch).logits.float() / 2.0)
    p, log_q = torch.softmax(logits[0], dim=-1), torch.log_softmax(logits[1], dim=-1)
    return float(torch.nn.functional.kl_div(log_q, p, reduction="batchmean"))


def test_refuses_personal_texts_a_teacher_not_approved_and_dp(  # type: ignore[no-untyped-def]
    client, admin, runtime, project, engineer, dataset_version, teacher, make_worker
) -> None:
    personal = _unlabelled(client, admin, project, contains_personal_data=True, name="mails")
    refused = submit(client, engineer, project, personal["id"], **_distil(teacher))
    assert refused.status_code == 422, refused.text
    assert refused.json()["rule"] == "jobs.distill.non-personal-data"
    assert "personal data" in refused.json()["detail"]

    texts = _unlabelled(client, admin, project)
    candidate = _trained_version(client, project, engineer, dataset_version["id"], make_worker)
    refused = submit(client, engineer, project, texts["id"], **_distil(candidate))
    assert refused.status_code == 409, refused.text
    assert refused.json()["rule"] == "jobs.distill.approved-only"

    private = submit(client, engineer, project, texts["id"], distill_from_model_version_id=teacher)
    assert private.status_code == 422, private.text
    assert "non-private" in private.text

    jobs = client.get(f"/v1/projects/{project}/training-jobs", headers=engineer.headers).json()
    ids = {j["dataset_version_id"] for j in jobs}
    assert texts["id"] not in ids and personal["id"] not in ids  # nothing half-written


def test_refuses_another_projects_teacher(  # type: ignore[no-untyped-def]
    client, admin, make_caller, project, teacher
) -> None:
    other_project = client.post(
        "/v1/projects", json={"name": "insurance"}, headers=admin.headers
    ).json()["id"]
    engineer = make_caller("ml_engineer", other_project, name="their-engineer")
    upload_version(client, admin, other_project)  # the project has data of its own
    texts = _unlabelled(client, admin, other_project)
    refused = submit(client, engineer, other_project, texts["id"], **_distil(teacher))
    assert refused.status_code == 404, refused.text
    assert refused.json()["rule"] == "jobs.distill.same-project"
    assert refused.json()["type"].endswith("distill-teacher-not-found")
