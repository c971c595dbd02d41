"""Fixtures for inference tests: a tiny BERT base model built in code, and registered
model versions (through the registry's own service) in any state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from privet.config import clear_settings_caches

WORDS = (
    "the loan was approved rejected good bad late payment customer income high low risk "
    "fine paid on time never missed account closed debt credit card balance"
).split()

PURPOSE = "credit_scoring"
LABELS = ("accept", "reject")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny random BERT registered in the process catalog as ``tiny-infer``."""
    from privet.training.catalog import CATALOG, build_tiny_bert

    spec = build_tiny_bert(
        tmp_path_factory.mktemp("tiny-base"),
        name="tiny-infer",
        words=WORDS,
        max_position_embeddings=64,
    )
    CATALOG.register(spec, replace=True)
    return spec


def scan_files(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under ``root`` (databases, blobs, logs) that holds one of ``needles``:
    ``"<path>: <needle>"`` per find, empty when none is at rest anywhere."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {n!r}" for n in needles if n in data]
    return found


def classifier_weights(base_model: str, num_labels: int, seed: int = 0) -> bytes:
    """Safetensors bytes of a classifier on a catalog base model (random head)."""
    from privet.training.catalog import POOLING_METADATA_KEY, load_base_model
    from privet.training.trainer import weights_to_bytes

    loaded = load_base_model(base_model, num_labels=num_labels, seed=seed)
    # The pooling travels with the weights, as the trainer writes it (`load_finetuned`
    # rebuilds the classifier the weights were made for).
    metadata = {"base_model": base_model, POOLING_METADATA_KEY: loaded.spec.pooling}
    return weights_to_bytes(loaded.model, metadata)


def register_version(
    runtime: Any,
    project_id: str,
    *,
    base_model: str,
    weights: bytes,
    model_name: str = "risk",
    labels: Sequence[str] = LABELS,
    purposes: Sequence[str] = (PURPOSE,),
    state: str = "approved",
    submitted_by: str = "User:trainer",
    max_length: int = 64,
) -> Any:
    """A model version registered through privet.models.service, then moved to ``state``."""
    from privet.db import session_scope
    from privet.models import service
    from privet.models.tables import ModelVersion

    with session_scope(runtime.engine) as session:
        version = service.register_version(
            session,
            runtime=runtime,
            reg=service.Registration(
                project_id=project_id,
                model_name=model_name,
                job_id="job_test",
                submitted_by=submitted_by,
                base_model=base_model,
                base_model_sha256="0" * 64,
                label_names=list(labels),
                purposes=list(purposes),
                dataset_versions=[],
                private=True,
                privacy={"epsilon": 3.0, "delta": 1e-5},
                metrics={},
                training={"max_length": max_length},
                weights=weights,
                policy_version=None,
            ),
        )
        version_id = version.id
    if state != "candidate":
        set_state(runtime, version_id, state)
    with session_scope(runtime.engine) as session:
        return session.get(ModelVersion, version_id)


def set_state(runtime: Any, version_id: str, state: str) -> None:
    from privet.db import session_scope
    from privet.models import lifecycle
    from privet.models.tables import ModelVersion

    with session_scope(runtime.engine) as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None
        if state in ("approved", "retired"):
            action = lifecycle.approve if state == "approved" else lifecycle.retire
            kwargs: dict[str, Any] = {"reason": "test"} if state == "retired" else {}
            action(
                session,
                version=version,
                actor_id="prn_approver",
                actor_ref="User:approver",
                **kwargs,
            )
        else:
            version.state = state
            session.add(version)


@pytest.fixture
def project(client: Any, admin: Any) -> str:
    response = client.post("/v1/projects", json={"name": "credit"}, headers=admin.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def make_version(runtime: Any, tiny_base: Any) -> Callable[..., Any]:
    cache: dict[int, bytes] = {}

    def make(project_id: str, *, seed: int = 0, **kwargs: Any) -> Any:
        labels = kwargs.get("labels", LABELS)
        key = seed * 100 + len(labels)
        if key not in cache:
            cache[key] = classifier_weights(tiny_base.name, len(labels), seed)
        return register_version(
            runtime, project_id, base_model=tiny_base.name, weights=cache[key], **kwargs
        )

    return make


@pytest.fixture(autouse=True)
def _fast_state_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    """State changes are seen at once in tests (the retirement test sets its own TTL)."""
    monkeypatch.setenv("PRIVET_INFERENCE_STATE_TTL_S", "0")
    clear_settings_caches()


def predict_path(project_id: str, model: str, version: str | int | None = None) -> str:
    if version is None:
        return f"/v1/projects/{project_id}/models/{model}:predict"
    return f"/v1/projects/{project_id}/models/{model}/versions/{version}:predict"


@pytest.fixture
def paths() -> Any:
    class Paths:
        predict = staticmethod(predict_path)

        @staticmethod
        def review(project_id: str, prediction_id: str) -> str:
            return f"/v1/projects/{project_id}/predictions/{prediction_id}:review"

        @staticmethod
        def explain(project_id: str, prediction_id: str) -> str:
            return f"/v1/projects/{project_id}/predictions/{prediction_id}:explain"

    return Paths


def ledger_events(runtime: Any, type_prefix: str = "") -> list[dict[str, Any]]:
    """Every ledger entry's event (committed so far), decoded, in allocation order."""
    import json

    from sqlalchemy import select

    from privet.db import session_scope
    from privet.ledger.tables import LedgerEntry

    with session_scope(runtime.engine) as session:
        rows = session.execute(select(LedgerEntry.event).order_by(LedgerEntry.id)).scalars()  # type: ignore[call-overload]
        events = [json.loads(bytes(r)) for r in rows]
    return [e for e in events if e["type"].startswith(type_prefix)]


@pytest.fixture
def events(runtime: Any) -> Callable[[str], list[dict[str, Any]]]:
    return lambda prefix="": ledger_events(runtime, prefix)


@pytest.fixture
def change_state(runtime: Any) -> Callable[[str, str], None]:
    return lambda version_id, state: set_state(runtime, version_id, state)
