"""A model version in memory: its classifier and the micro-batcher feeding it.

Loaded on first use (torch and transformers import here, not when the service starts)
and kept in the service's ``ModelCache`` until evicted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from privet.crypto.context import SealedStorage
from privet.db import read_session
from privet.inference.batcher import MicroBatcher
from privet.inference.cache import CacheMetrics
from privet.inference.settings import InferenceSettings
from privet.inference.versions import VersionInfo, load_weights

if TYPE_CHECKING:  # torch and transformers load on the first prediction, not at import
    from privet.inference.classifier import Classifier, Scores

log = logging.getLogger("privet.inference")
DEVICE_SETTING = "PRIVET_INFERENCE_DEVICE"
PRECISION_SETTING = "PRIVET_INFERENCE_PRECISION"


@dataclass
class ServedModel:
    """A cached version: its classifier and the micro-batcher feeding it."""

    classifier: Classifier
    batcher: MicroBatcher[str, Scores]

    @property
    def nbytes(self) -> int:
        return self.classifier.nbytes

    @property
    def device(self) -> str:
        return str(self.classifier.device)

    @property
    def device_bytes(self) -> int:
        return self.classifier.device_bytes

    def close(self) -> None:
        self.batcher.close(wait=False)


def load_served(
    engine: Engine,
    *,
    runtime: SealedStorage,
    info: VersionInfo,
    config: InferenceSettings,
    metrics: CacheMetrics,
) -> ServedModel:
    """Decrypt the version's weights (``runtime``: key provider and blob store), build its
    classifier and start its micro-batcher. The weights are read in a read-only snapshot of
    their own, ended before the model is built: a request that loads a version holds no
    transaction (and on SQLite no write lock) while it does."""
    from privet.inference.classifier import Classifier, set_threads
    from privet.training.device import check_precision, resolve_device

    set_threads(config.torch_threads)
    device = resolve_device(config.device, setting=DEVICE_SETTING)
    precision = check_precision(config.precision, device, setting=PRECISION_SETTING)
    with read_session(engine) as session:
        loaded = load_weights(session=session, runtime=runtime, info=info)
    classifier = Classifier.from_weights(
        loaded.weights,
        base_model=info.base_model,
        label_names=info.label_names,
        max_length=min(config.max_length, loaded.max_length),
        version_id=info.id,
        device=device,
        precision=precision,
    )
    del loaded
    log.info(
        "model version loaded",
        extra={
            "model_version": info.id,
            "bytes": classifier.nbytes,
            "device": str(device),
            "precision": precision,
        },
    )

    def on_batch(requests: int, items: int) -> None:
        metrics.batch_requests.observe(requests)
        metrics.batch_items.observe(items)

    batcher: MicroBatcher[str, Scores] = MicroBatcher(
        classifier.predict,
        max_items=config.batch_max_items,
        max_wait_s=config.batch_max_wait_ms / 1000.0,
        name=f"privet-batcher-{info.id}",
        on_batch=on_batch,
    )
    return ServedModel(classifier, batcher)
