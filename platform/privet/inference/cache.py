"""The model cache: decrypted model versions in memory only, bounded, LRU-evicted.

Weights are decrypted into a ``bytes`` object, loaded into the model and dropped; no
plaintext is ever written to disk. The cache is bounded by a number of versions and by
bytes of parameters; the least recently used version goes first (a single version larger
than the byte bound is still served, alone). On a GPU the cache also counts the bytes its
versions' weights hold of the device's memory (``device_bytes``; 0 on the CPU) and, when
``max_device_bytes`` is set, evicts by them too. Loads of one version are single-flight:
concurrent first requests wait for one load. Load time, hits, misses, evictions, the
cache's size and the serving precision are Prometheus metrics in the registry passed in
(else the default one).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...

    def close(self) -> None: ...


V = TypeVar("V", bound=Sized)


@dataclass(frozen=True)
class CacheMetrics:
    load_seconds: Histogram
    hits: Counter
    misses: Counter
    evictions: Counter
    models: Gauge
    bytes: Gauge
    device_bytes: Gauge
    batch_items: Histogram
    batch_requests: Histogram
    precision: Gauge


#: The metrics made in each Prometheus registry, kept as long as that registry lives (the
#: gateway's belongs to its app). A registry refuses a metric name twice, so they cannot
#: be forgotten earlier: not a ``privet.kit.process_state`` registry that tests empty.
_metrics: weakref.WeakKeyDictionary[CollectorRegistry, CacheMetrics] = weakref.WeakKeyDictionary()
_metrics_lock = threading.Lock()


def inference_metrics(registry: CollectorRegistry | None = None) -> CacheMetrics:
    """The inference metrics in ``registry`` (created once per registry)."""
    registry = registry if registry is not None else REGISTRY
    with _metrics_lock:
        found = _metrics.get(registry)
        if found is None:
            found = _metrics[registry] = CacheMetrics(
                load_seconds=Histogram(
                    "privet_inference_model_load_seconds",
                    "Time to decrypt and load a model version into memory.",
                    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
                    registry=registry,
                ),
                hits=Counter(
                    "privet_inference_model_cache_hits",
                    "Requests served by a model version already in memory.",
                    registry=registry,
                ),
                misses=Counter(
                    "privet_inference_model_cache_misses",
                    "Requests that had to load a model version.",
                    registry=registry,
                ),
                evictions=Counter(
                    "privet_inference_model_cache_evictions",
                    "Model versions dropped from memory (LRU, or retired).",
                    registry=registry,
                ),
                models=Gauge(
                    "privet_inference_models_cached",
                    "Model versions in memory.",
                    registry=registry,
                ),
                bytes=Gauge(
                    "privet_inference_model_cache_bytes",
                    "Bytes of parameters of the model versions in memory.",
                    registry=registry,
                ),
                device_bytes=Gauge(
                    "privet_inference_model_cache_device_bytes",
                    "Bytes of the cached versions' weights held in GPU memory (0 on the CPU).",
                    registry=registry,
                ),
                batch_items=Histogram(
                    "privet_inference_batch_items",
                    "Texts per forward pass of the micro-batcher.",
                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                    registry=registry,
                ),
                batch_requests=Histogram(
                    "privet_inference_batch_requests",
                    "Requests combined into one forward pass.",
                    buckets=(1, 2, 4, 8, 16, 32, 64),
                    registry=registry,
                ),
                precision=Gauge(
                    "privet_inference_precision",
                    "1 for the precision served forward passes compute in "
                    "(PRIVET_INFERENCE_PRECISION: fp32 or bf16).",
                    ["precision"],
                    registry=registry,
                ),
            )
        return found


class ModelCache(Generic[V]):
    """An LRU of loaded values keyed by version id, bounded by count and bytes."""

    def __init__(
        self,
        *,
        max_models: int,
        max_bytes: int,
        max_device_bytes: int = 0,
        metrics: CacheMetrics | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.max_models = max_models
        self.max_bytes = max_bytes
        self.max_device_bytes = max_device_bytes
        self.metrics = metrics or inference_metrics()
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(v.nbytes for v in self._entries.values())

    @property
    def device_bytes(self) -> int:
        """Bytes of GPU memory the cached versions' weights hold (0 when on the CPU)."""
        with self._lock:
            return self._device_bytes()

    def usage(self) -> dict[str, dict[str, int]]:
        """Per device (``cpu``, ``cuda:0``): versions cached, parameter bytes, and bytes
        of that device's memory they hold (0 for the CPU)."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for value in self._entries.values():
                row = out.setdefault(
                    str(getattr(value, "device", "cpu")),
                    {"models": 0, "bytes": 0, "device_bytes": 0},
                )
                row["models"] += 1
                row["bytes"] += value.nbytes
                row["device_bytes"] += _device_bytes_of(value)
        return out

    def _device_bytes(self) -> int:
        return sum(_device_bytes_of(v) for v in self._entries.values())

    def _over(self) -> bool:
        if len(self._entries) > self.max_models:
            return True
        if sum(v.nbytes for v in self._entries.values()) > self.max_bytes:
            return True
        return bool(self.max_device_bytes) and self._device_bytes() > self.max_device_bytes

    def peek(self, key: str) -> V | None:
        """The cached value without loading, counting or touching its LRU position."""
        with self._lock:
            return self._entries.get(key)

    def _lookup(self, key: str) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def get(self, key: str, load: Callable[[], V]) -> V:
        """The cached value, or ``load()``'s (once, even under concurrent calls)."""
        value = self._lookup(key)
        if value is not None:
            self.metrics.hits.inc()
            return value
        with self._lock:
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            value = self._lookup(key)
            if value is not None:
                self.metrics.hits.inc()
                return value
            self.metrics.misses.inc()
            started = self._clock()
            try:
                value = load()
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            self.metrics.load_seconds.observe(self._clock() - started)
            self._insert(key, value)
            return value

    def _insert(self, key: str, value: V) -> None:
        evicted: list[V] = []
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > 1 and self._over():
                _, old = self._entries.popitem(last=False)
                evicted.append(old)
            self._publish()
        for old in evicted:
            self.metrics.evictions.inc()
            old.close()

    def evict(self, key: str) -> bool:
        """Drop one version (e.g. once it is retired); True if it was cached."""
        with self._lock:
            value = self._entries.pop(key, None)
            self._publish()
        if value is None:
            return False
        self.metrics.evictions.inc()
        value.close()
        return True

    def clear(self) -> None:
        for key in self.keys():
            self.evict(key)

    def _publish(self) -> None:
        self.metrics.models.set(len(self._entries))
        self.metrics.bytes.set(sum(v.nbytes for v in self._entries.values()))
        self.metrics.device_bytes.set(self._device_bytes())


def _device_bytes_of(value: object) -> int:
    """A cached value's GPU bytes (``device_bytes``; values without one hold none)."""
    return int(getattr(value, "device_bytes", 0) or 0)
