"""The micro-batcher and the model cache, without a database or a model."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from privet.inference.batcher import BatcherClosedError, MicroBatcher
from privet.inference.cache import ModelCache, inference_metrics


def test_concurrent_requests_share_forward_passes() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def fn(items: list[int]) -> list[int]:
        gate.wait(5)  # hold the first pass so the others queue up behind it
        calls.append(len(items))
        return [i * 10 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(fn, max_items=64, max_wait_s=0.001)
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(batcher.submit, [i, i + 1000]) for i in range(16)]
        time.sleep(0.2)
        gate.set()
        results = [f.result(5) for f in futures]
    assert results == [[i * 10, (i + 1000) * 10] for i in range(16)]
    assert sum(calls) == 32
    assert len(calls) < 16  # requests were combined
    batcher.close()


def test_large_requests_are_split_and_keep_their_order() -> None:
    sizes: list[int] = []

    def fn(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return [-i for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(fn, max_items=8, max_wait_s=0)
    assert batcher.submit(list(range(20))) == [-i for i in range(20)]
    assert max(sizes) <= 8 and sum(sizes) == 20
    assert batcher.submit([]) == []
    batcher.close()
    with pytest.raises(BatcherClosedError):
        batcher.submit([1])


def test_a_failing_batch_fails_its_callers_and_the_batcher_goes_on() -> None:
    def fn(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    batcher: MicroBatcher[int, int] = MicroBatcher(fn, max_items=4, max_wait_s=0)
    with pytest.raises(ValueError, match="unlucky"):
        batcher.submit([13])
    assert batcher.submit([1, 2]) == [1, 2]
    batcher.close()


class Fake:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_cache_is_lru_bounded_by_count_and_bytes() -> None:
    registry = CollectorRegistry()
    cache: ModelCache[Fake] = ModelCache(
        max_models=2, max_bytes=100, metrics=inference_metrics(registry)
    )
    a = cache.get("a", lambda: Fake(40))
    b = cache.get("b", lambda: Fake(40))
    assert cache.get("a", lambda: Fake(999)) is a  # hit; a is now most recent
    c = cache.get("c", lambda: Fake(10))  # count bound: b (least recent) goes
    assert cache.keys() == ["a", "c"] and b.closed and not a.closed
    d = cache.get("d", lambda: Fake(70))  # byte bound: a (40+10+70 > 100) goes
    assert cache.keys() == ["c", "d"] and a.closed
    big = cache.get("big", lambda: Fake(500))  # larger than the bound: served alone
    assert cache.keys() == ["big"] and c.closed and d.closed and not big.closed
    assert cache.evict("big") and big.closed and cache.keys() == []
    text = generate_latest(registry).decode()
    assert "privet_inference_model_cache_hits_total 1.0" in text
    assert "privet_inference_model_cache_misses_total 5.0" in text
    assert "privet_inference_model_cache_evictions_total 5.0" in text
    assert "privet_inference_model_load_seconds_count 5.0" in text
    assert "privet_inference_models_cached 0.0" in text


def test_concurrent_first_requests_load_once() -> None:
    loads: list[int] = []

    def load() -> Fake:
        loads.append(1)
        time.sleep(0.2)
        return Fake(1)

    cache: ModelCache[Fake] = ModelCache(
        max_models=2, max_bytes=100, metrics=inference_metrics(CollectorRegistry())
    )
    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda _: cache.get("v", load), range(8)))
    assert len(loads) == 1 and all(v is values[0] for v in values)


def test_a_failed_load_is_retried_by_the_next_request() -> None:
    cache: ModelCache[Fake] = ModelCache(
        max_models=2, max_bytes=100, metrics=inference_metrics(CollectorRegistry())
    )

    def broken() -> Fake:
        raise RuntimeError("key unavailable")

    with pytest.raises(RuntimeError):
        cache.get("v", broken)
    assert cache.get("v", lambda: Fake(1)).nbytes == 1


class OnDevice(Fake):
    def __init__(self, nbytes: int, device: str) -> None:
        super().__init__(nbytes)
        self.device = device
        self.device_bytes = nbytes if device.startswith("cuda") else 0


def test_cache_accounts_device_memory_and_evicts_by_it() -> None:
    """Versions on the CPU hold no GPU memory (0); on CUDA their weights' bytes count, in
    the usage, the gauge and, with max_device_bytes, the LRU bound."""
    registry = CollectorRegistry()
    cache: ModelCache[OnDevice] = ModelCache(
        max_models=8, max_bytes=10_000, max_device_bytes=100, metrics=inference_metrics(registry)
    )
    cache.get("cpu", lambda: OnDevice(500, "cpu"))
    assert cache.device_bytes == 0
    assert cache.usage() == {"cpu": {"models": 1, "bytes": 500, "device_bytes": 0}}
    cache.get("g1", lambda: OnDevice(60, "cuda:0"))
    assert cache.device_bytes == 60
    assert "privet_inference_model_cache_device_bytes 60.0" in generate_latest(registry).decode()
    g2 = cache.get("g2", lambda: OnDevice(60, "cuda:0"))  # 120 > 100: g1 (LRU on the GPU)...
    assert "g1" not in cache and cache.device_bytes == 60 and not g2.closed
    assert "cpu" not in cache  # ...after the older CPU version: the LRU order is one
    assert cache.usage() == {"cuda:0": {"models": 1, "bytes": 60, "device_bytes": 60}}
