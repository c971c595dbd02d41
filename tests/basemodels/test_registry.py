"""The base-model registry over the API: platform admins register a local folder (pinned,
audited), everyone reads, retiring stops new jobs; hostile folders get a 4xx naming the
rule; a tampered file is refused at load; a Chinese tiny BERT trains and serves end to end.
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from privet.config import clear_settings_caches
from privet.training.catalog import CatalogError, build_tiny_bert, load_base_model, minilm_path
from tests.datasets.conftest import declarations, to_csv, upload
from tests.jobs.conftest import WORDS, job_body, ledger_events, submit


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PRIVET_BASE_MODELS_ROOTS: one folder of the test's own."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("PRIVET_BASE_MODELS_ROOTS", str(folder))
    clear_settings_caches()
    return folder


def _add(client: Any, caller: Any, path: Path | str, name: str, **extra: Any) -> Any:
    body = {"name": name, "path": str(path), "license": "apache-2.0", **extra}
    return client.post("/v1/base-models", json=body, headers=caller.headers)


def test_shipped_minilm_is_the_first_entry_as_inspection_reads_it(client, admin) -> None:  # type: ignore[no-untyped-def]
    from privet.basemodels.inspect import inspect_folder

    listed = client.get("/v1/base-models", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    row = {r["name"]: r for r in listed.json()}["minilm-l6"]
    found = inspect_folder(str(minilm_path()), roots=[minilm_path()], max_file_bytes=1 << 30)
    assert row["state"] == "active" and row["pooling"] == found.pooling == "mean"
    assert {k: found.digests[k] for k in row["digests"]} == row["digests"]
    assert row["vocab_coverage"] == found.vocab_coverage and row["vocab_size"] == 30522
    assert (row["max_positions"], row["model_type"]) == (found.max_positions, "bert")


def test_platform_admin_registers_others_read_only_and_it_is_audited(  # type: ignore[no-untyped-def]
    client, runtime, admin, make_caller, project, root
) -> None:
    spec = build_tiny_bert(root / "zh", name="x", words=["好", "差", "菜"])
    project_admin = make_caller("admin", project, name="project-admin")
    refused = _add(client, project_admin, spec.path, "tiny-zh")
    assert refused.status_code == 403, refused.text
    created = _add(client, admin, spec.path, "tiny-zh")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["digests"] == dict(spec.digests) and body["pooling"] == "cls"
    assert body["vocab_coverage"]["cjk"] == 3 * 1000 // body["vocab_size"]
    assert body["license"] == "Apache-2.0" and body["model_type"] == "bert"
    again = _add(client, admin, spec.path, "tiny-zh")
    assert again.status_code == 409
    shown = client.get("/v1/base-models/tiny-zh", headers=project_admin.headers)
    assert shown.status_code == 200 and shown.json()["id"] == body["id"]
    events = [e for e in ledger_events(runtime) if e["type"].startswith("base_model.")]
    assert [e["type"] for e in events] == ["base_model.registered"]
    assert events[0]["objects"] == {"base_model": body["id"]}
    assert {f["file"] for f in events[0]["details"]["files"]} == set(spec.digests)


def test_hostile_folders_get_a_4xx_naming_the_rule(client, admin, root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = build_tiny_bert(root / "good", name="x", words=WORDS).path
    outside = build_tiny_bert(tmp_path / "outside", name="y", words=WORDS).path
    linked = root / "linked"
    linked.symlink_to(good)
    inner_link = root / "inner"
    inner_link.mkdir()
    for f in good.iterdir():
        (inner_link / f.name).write_bytes(f.read_bytes())
    (inner_link / "config.json").unlink()
    (inner_link / "config.json").symlink_to(good / "config.json")
    no_config = root / "no-config"
    no_config.mkdir()
    (no_config / "model.safetensors").write_bytes(b"x")
    rel = build_tiny_bert(
        root / "rel",
        name="z",
        words=WORDS,
        model_type="deberta-v2",
        config_overrides={"relative_attention": True, "max_relative_positions": 16},
    ).path
    cases = {
        "allowed-root": (outside, 422),
        "no-symlinks": (linked, 422),
        "required-file": (no_config, 422),
        "model-family": (rel, 422),
        "absolute-path": ("models/good", 422),
    }
    for rule, (path, code) in cases.items():
        r = _add(client, admin, path, f"bad-{len(rule)}")
        assert r.status_code == code, (rule, r.text)
        assert r.json()["rule"] == rule, r.text
    r = _add(client, admin, inner_link, "bad-inner")
    assert r.status_code == 422 and r.json()["rule"] == "no-symlinks"
    assert "rel_embeddings" in _add(client, admin, rel, "bad-rel").json()["detail"]
    os.environ["PRIVET_BASE_MODELS_MAX_FILE_BYTES"] = "1000"
    clear_settings_caches()
    try:
        big = _add(client, admin, good, "too-big")
    finally:
        del os.environ["PRIVET_BASE_MODELS_MAX_FILE_BYTES"]
    assert big.status_code == 413 and big.json()["limit"] == 1000, big.text
    names = {r["name"] for r in client.get("/v1/base-models", headers=admin.headers).json()}
    assert names == {"minilm-l6"}  # nothing half-written


def test_retired_model_admits_no_new_jobs_and_tampering_is_refused(  # type: ignore[no-untyped-def]
    client, admin, project, engineer, dataset_version, root
) -> None:
    spec = build_tiny_bert(root / "m", name="x", words=WORDS, pooling="mean")
    assert _add(client, admin, spec.path, "tiny-reg").status_code == 201
    accepted = submit(client, engineer, project, dataset_version["id"], base_model="tiny-reg")
    assert accepted.status_code == 201, accepted.text
    retired = client.post("/v1/base-models/tiny-reg:retire", headers=admin.headers)
    assert retired.status_code == 200 and retired.json()["state"] == "retired"
    refused = submit(client, engineer, project, dataset_version["id"], base_model="tiny-reg")
    assert refused.status_code == 403, refused.text
    assert "model.base-model-allowlist" in refused.text
    assert client.post("/v1/base-models/tiny-reg:retire", headers=admin.headers).status_code == 409
    weights = spec.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(CatalogError, match="does not match its pinned SHA-256"):
        load_base_model("tiny-reg", num_labels=2)  # resolved from the registry


CHARS = "好吃香美味棒赞差难吃臭贵慢糟菜饭送快很太了的"
GOOD = ["好吃", "很香", "美味", "很棒", "赞"]
BAD = ["难吃", "太臭", "很贵", "太慢", "糟"]


def _chinese_rows(n: int) -> list[dict[str, str]]:
    rng = random.Random(3)
    rows = []
    for i in range(n):
        good = i % 2 == 0
        text = f"菜{rng.choice(GOOD if good else BAD)}了\uff0c送{rng.choice(['快', '慢'])}"
        rows.append({"text": text, "label": "好评" if good else "差评", "customer": f"c-{i}"})
    return rows


def test_chinese_tiny_bert_trains_and_classifies_end_to_end(  # type: ignore[no-untyped-def]
    client, runtime, admin, project, engineer, approver, make_worker, make_caller, root
) -> None:
    spec = build_tiny_bert(root / "zh", name="x", words=[*list(CHARS), "\uff0c"], pooling="cls")
    added = _add(client, admin, spec.path, "tiny-zh-bert", description="中文 tiny BERT")
    assert added.status_code == 201, added.text
    assert added.json()["vocab_coverage"]["cjk"] > 700
    decl = declarations(name="waimai", purposes=["credit_scoring"])
    version = upload(client, admin.headers, project, to_csv(_chinese_rows(80)), decl=decl)
    assert version.status_code == 201, version.text
    body = job_body(version.json()["id"], base_model="tiny-zh-bert", strategy="full")
    job = client.post(f"/v1/projects/{project}/training-jobs", json=body, headers=engineer.headers)
    assert job.status_code == 201, job.text
    assert make_worker().tick()
    done = client.get(
        f"/v1/projects/{project}/training-jobs/{job.json()['id']}", headers=engineer.headers
    ).json()
    assert done["state"] == "succeeded", done.get("reason")
    vid = done["model_version_id"]
    own = client.post(
        f"/v1/projects/{project}/model-versions/{vid}:approve", headers=engineer.headers
    )
    assert own.status_code == 403  # the submitter cannot approve (two people)
    ok = client.post(
        f"/v1/projects/{project}/model-versions/{vid}:approve", headers=approver.headers
    )
    assert ok.status_code == 200, ok.text
    info = client.get(
        f"/v1/projects/{project}/model-versions/{vid}", headers=engineer.headers
    ).json()
    assert info["base_model"] == "tiny-zh-bert"
    predictor = make_caller("predictor", project, name="app")
    path = f"/v1/projects/{project}/models/{info['model_name']}/versions/{info['number']}:predict"
    items = [
        {"text": t, "purpose": "credit_scoring"}
        for t in ("菜好吃了\uff0c送快", "菜太臭了\uff0c送慢")
    ]
    r = client.post(path, json={"items": items}, headers=predictor.headers)
    assert r.status_code == 200, r.text
    assert {p["label"] for p in r.json()["predictions"]} <= {"好评", "差评"}
    assert json.dumps(r.json(), ensure_ascii=False)
