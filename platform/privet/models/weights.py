"""A model version's weights, decrypted for inference (`load_version`) or export
(`export_archive`).

Weights live only inside the encryption envelope (`ObjectRef("model_version", <version
id>, <project>)`, part ``weights``): they are decrypted into memory for inference or
straight into an export's response stream, never into a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from privet import ledger
from privet.crypto import ObjectRef, read_object_bytes
from privet.crypto.context import SealedStorage
from privet.kit.errors import ConflictError
from privet.models.service import get_version, model_name_of
from privet.models.tables import OBJECT_KIND, WEIGHTS_PART, ModelVersion, ModelVersionState

EXPORT_CHUNK = 1 << 20
HF_MODEL_CODE = "modeling_privet.py"
"""Model code shipped in an export whose architecture stock transformers lacks."""


def weights_ref(version: ModelVersion) -> ObjectRef:
    return ObjectRef(OBJECT_KIND, version.id, version.project_id)


@dataclass(frozen=True)
class LoadedVersion:
    """An approved version's weights (plaintext, in memory only) and what is needed to use them."""

    version_id: str
    project_id: str
    model_id: str
    number: int
    state: str
    base_model: str
    label_names: tuple[str, ...]
    purposes: tuple[str, ...]
    max_length: int
    weights: bytes
    weights_sha256: str

    def build(self, catalog: Any = None) -> Any:
        """The classifier and tokenizer (privet.training.catalog.LoadedBaseModel)."""
        from privet.training.catalog import load_finetuned

        return load_finetuned(
            self.weights,
            base_model=self.base_model,
            num_labels=len(self.label_names),
            catalog=catalog,
        )


def load_version(
    session: Session,
    *,
    runtime: SealedStorage,
    project_id: str,
    version_id: str,
    require_approved: bool = True,
) -> LoadedVersion:
    """Decrypt a version's weights into memory and check their digest.

    Inference calls this for approved versions (the default); a version that is not
    approved raises ConflictError."""
    version = get_version(session, project_id=project_id, version_id=version_id)
    if require_approved and version.state != ModelVersionState.approved.value:
        raise ConflictError(
            f"model version {version_id} is {version.state}; only approved versions serve",
            state=version.state,
        )
    weights = read_object_bytes(
        session=session,
        provider=runtime.key_provider,
        store=runtime.blobs,
        ref=weights_ref(version),
        part=WEIGHTS_PART,
    )
    if hashlib.sha256(weights).hexdigest() != version.weights_sha256:
        raise ConflictError(f"model version {version_id}: weights do not match their digest")
    return LoadedVersion(
        version_id=version.id,
        project_id=version.project_id,
        model_id=version.model_id,
        number=version.number,
        state=version.state,
        base_model=version.base_model,
        label_names=tuple(version.label_names),
        purposes=tuple(version.purposes),
        max_length=int(version.training.get("max_length", 64)),
        weights=weights,
        weights_sha256=version.weights_sha256,
    )


def hf_files(
    *, base_model: str, label_names: Sequence[str], weights: bytes, catalog: Any = None
) -> dict[str, bytes]:
    """The Hugging Face folder of fine-tuned weights (config, safetensors, tokenizer, and
    model code where stock transformers lacks the class): what an export ships, so that
    `from_pretrained` on it rebuilds the served classifier."""
    return {
        **_hf_model_files(base_model, label_names, weights, catalog),
        "model.safetensors": weights,
        **_tokenizer_files(base_model, catalog),
    }


def _hf_model_files(
    base_model: str, label_names: Sequence[str], weights: bytes, catalog: Any = None
) -> dict[str, bytes]:
    """config.json for the version's architecture, plus the model code when stock
    transformers has no class for it (mean pooling: loaded with trust_remote_code)."""
    from privet.training import pooling as pooling_module
    from privet.training.catalog import CATALOG, build_config, weights_pooling

    spec = (catalog or CATALOG).get(base_model)
    config = build_config(spec, len(label_names))
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: i for i, name in enumerate(label_names)}
    files: dict[str, bytes] = {}
    if weights_pooling(weights) == "mean":
        cls = pooling_module.MeanPooledBertForSequenceClassification.__name__
        config.architectures = [cls]
        config.auto_map = {"AutoModelForSequenceClassification": f"{HF_MODEL_CODE[:-3]}.{cls}"}
        files[HF_MODEL_CODE] = Path(pooling_module.__file__).read_bytes()
    else:  # the family's stock classifier (BertForSequenceClassification, Roberta..., ...)
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES as STOCK,
        )

        config.architectures = [STOCK[config.model_type]]
    text: str = config.to_json_string()
    return {"config.json": text.encode(), **files}


def _tokenizer_files(base_model: str, catalog: Any = None) -> dict[str, bytes]:
    from privet.training.catalog import CATALOG, CONFIG_FILE, WEIGHTS_FILE, read_verified

    spec = (catalog or CATALOG).get(base_model)
    return {
        name: read_verified(spec, name)
        for name in spec.digests
        if name not in (WEIGHTS_FILE, CONFIG_FILE)
    }


def export_archive(
    session: Session,
    *,
    runtime: SealedStorage,
    version: ModelVersion,
    actor_id: str,
    catalog: Any = None,
) -> tuple[str, Iterator[bytes]]:
    """A Hugging Face folder (config, safetensors, tokenizer, README.md card) as a tar
    stream, built in memory; the export is ledgered in the caller's transaction.

    Returns (file name, chunks). Policy (approved state, admin or grant) is decided by
    the caller's guard before this is called; a non-approved version is still refused."""
    if version.state != ModelVersionState.approved.value:
        raise ConflictError(
            f"model version {version.id} is {version.state}; only approved versions are exported",
            state=version.state,
        )
    loaded = load_version(
        session, runtime=runtime, project_id=version.project_id, version_id=version.id
    )
    files: dict[str, bytes] = {
        **hf_files(
            base_model=version.base_model,
            label_names=version.label_names,
            weights=loaded.weights,
            catalog=catalog,
        ),
        "README.md": version.card.encode(),
        "privet_lineage.json": json.dumps(
            {"model_version": version.id, "lineage": version.lineage}, indent=2
        ).encode(),
    }
    model_name = model_name_of(session, version) or "model"
    folder = f"{model_name}-v{version.number}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            info.mtime = int(version.created_at.timestamp())
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    archive = buffer.getvalue()
    ledger.emit(
        session,
        type="model_version.exported",
        actor=actor_id,
        project=version.project_id,
        objects={"model": version.model_id, "model_version": version.id},
        digests={
            "weights": f"sha256:{version.weights_sha256}",
            "archive": f"sha256:{hashlib.sha256(archive).hexdigest()}",
        },
        details={"format": "huggingface-tar", "bytes": len(archive)},
    )

    def chunks() -> Iterator[bytes]:
        view = memoryview(archive)
        for start in range(0, len(view), EXPORT_CHUNK):
            yield bytes(view[start : start + EXPORT_CHUNK])

    return f"{folder}.tar", chunks()
