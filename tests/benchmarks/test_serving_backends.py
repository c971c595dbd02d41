"""Embedded SQLite serving against PostgreSQL and the bare batched forward pass, with 16
concurrent clients (issue 21 item 5: no forward pass inside a database transaction, so
the micro-batcher combines concurrent requests on SQLite too).

Run on demand (benchmarks are excluded from the default run):

    python -m pytest -s tests/benchmarks/test_serving_backends.py
    python tests/benchmarks/test_serving_backends.py [--clients 16] [--requests 6]
        [--items 8] [--rounds 2] [--tiny]

For each backend, a real `privet serve` (one uvicorn worker, no job worker) serves a
MiniLM-L6 classifier (random 2-class head; ``--tiny``: a tiny random BERT, to check the
script) registered and approved through the registry; ``clients`` threads each send
``requests`` `POST ...:predict` requests of ``items`` texts (truncated to 64 tokens). In
the same process, the baseline runs the same texts as bare forward passes in batches of
the server's batcher size (tokenized in the timed loop, as the server does). Rounds
alternate SQLite, PostgreSQL and the baseline; it prints predictions/s of each and the
ratios SQLite / PostgreSQL (target >= 0.8) and each / bare forward. Nothing is asserted
about time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LENGTH = 64
PURPOSE = "credit_scoring"


def _server(tmp: Path, name: str, database_url: str | None, base: Any, env: dict[str, str]) -> Any:
    """A started server with an approved version 1 of ``risk``: (server, url, key)."""
    from privet.config import Settings
    from privet.runtime import build_runtime
    from tests.conftest import predictor_key
    from tests.e2e.conftest import start_server
    from tests.inference.conftest import classifier_weights, register_version

    home = tmp / name / "home"
    home.parent.mkdir(parents=True)
    env = dict(env)
    if database_url:
        env["PRIVET_DATABASE_URL"] = database_url
    server = start_server(home, env=env, args=("--workers", "1", "--no-worker"))
    runtime = build_runtime(Settings(home=home, database_url=database_url))
    with server.client() as http:
        created = http.post("/v1/projects", json={"name": "bench"}).json()
    project, creator = created["id"], created["created_by"]
    register_version(
        runtime, project, base_model=base, weights=classifier_weights(base, 2), max_length=LENGTH
    )
    key = predictor_key(runtime, project, name="bench-app", key_name="bench", creator=creator)
    return server, f"/v1/projects/{project}/models/risk/versions/1:predict", key


def run(
    clients: int = 16, requests: int = 6, items: int = 8, rounds: int = 2, tiny: bool = False
) -> dict[str, float]:
    import httpx
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from privet.db import dispose_engines
    from privet.inference.settings import get_inference_settings
    from privet.training.catalog import CATALOG, DEFAULT_BASE_MODEL, build_tiny_bert, load_finetuned
    from tests.conftest import PgDatabase
    from tests.e2e.conftest import stop_server
    from tests.inference.conftest import WORDS, classifier_weights

    tmp = Path(tempfile.mkdtemp(prefix="privet-serve-bench-"))
    env: dict[str, str] = {}
    threads = int(os.environ.get("PRIVET_BENCH_THREADS", "0"))
    if threads:
        torch.set_num_threads(threads)
        env["PRIVET_INFERENCE_TORCH_THREADS"] = str(threads)
    base = DEFAULT_BASE_MODEL
    if tiny:
        from privet.jobs.catalog import write_catalog_file

        spec = build_tiny_bert(tmp / "tiny", name="tiny-serve-bench", words=WORDS)
        CATALOG.register(spec, replace=True)
        env["PRIVET_JOBS_EXTRA_CATALOG"] = str(write_catalog_file(tmp / "cat.json", [spec]))
        base = spec.name
    loaded = load_finetuned(classifier_weights(base, 2), base_model=base, num_labels=2)
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    rng = random.Random(7)
    vocab = [w for w in tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) > 2]
    work = [
        [
            [" ".join(rng.choices(vocab, k=LENGTH + 20)) for _ in range(items)]
            for _ in range(requests)
        ]
        for _ in range(clients)
    ]
    flat = [t for per_client in work for batch in per_client for t in batch]
    batch_size = get_inference_settings().batch_max_items
    pg = PgDatabase()
    servers = {}
    try:
        servers["sqlite"] = _server(tmp, "sqlite", None, base, env)
        servers["postgres"] = _server(tmp, "postgres", pg.url, base, env)

        def api(backend: str) -> float:
            server, url, key = servers[backend]
            headers = {"Authorization": f"Bearer {key}"}

            def client(batches: list[list[str]]) -> None:
                with httpx.Client(base_url=server.url, headers=headers, timeout=600) as http:
                    for texts in batches:
                        body = {"items": [{"text": t} for t in texts], "purpose": PURPOSE}
                        r = http.post(url, json=body)
                        if r.status_code != 200:
                            raise RuntimeError(r.text)

            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(client, work))
            return time.perf_counter() - started

        def forward() -> float:
            started = time.perf_counter()
            with torch.inference_mode():
                for i in range(0, len(flat), batch_size):
                    enc = tokenizer(
                        flat[i : i + batch_size],
                        padding=True,
                        truncation=True,
                        max_length=LENGTH,
                        return_tensors="pt",
                    )
                    model(**dict(enc))
            return time.perf_counter() - started

        for backend in servers:  # load the model into each server's cache
            server, url, key = servers[backend]
            with server.client() as http:
                body = {"items": [{"text": "warm up"}], "purpose": PURPOSE}
                r = http.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
                assert r.status_code == 200, r.text
        forward()
        times: dict[str, float] = {"sqlite": 0.0, "postgres": 0.0, "forward": 0.0}
        for number in range(rounds):
            order = ["sqlite", "postgres"] if number % 2 == 0 else ["postgres", "sqlite"]
            for what in [*order, "forward"]:
                t = api(what) if what != "forward" else forward()
                times[what] += t
                print(f"round {number + 1} {what}: {len(flat) / t:.1f} predictions/s", flush=True)
    finally:
        for server, _, _ in servers.values():
            stop_server(server)
        dispose_engines()
        pg.drop()
    n = rounds * len(flat)
    rate = {k: n / v for k, v in times.items()}
    figures = {
        "sqlite_per_s": rate["sqlite"],
        "postgres_per_s": rate["postgres"],
        "forward_per_s": rate["forward"],
        "sqlite_vs_postgres": rate["sqlite"] / rate["postgres"],
        "sqlite_vs_forward": rate["sqlite"] / rate["forward"],
        "postgres_vs_forward": rate["postgres"] / rate["forward"],
    }
    print(
        f"\n{'tiny BERT' if tiny else 'MiniLM-L6'}: {clients} clients x {requests} requests x "
        f"{items} texts ({LENGTH} tokens), {rounds} rounds, batcher max {batch_size}, torch "
        f"threads {torch.get_num_threads()} (this process)"
    )
    for k, v in figures.items():
        print(f"  {k:<22} {v:10.3f}")
    return figures


@pytest.mark.timeout(7200)
@pytest.mark.postgres
def test_serving_sqlite_vs_postgres() -> None:
    figures = run(
        clients=int(os.environ.get("PRIVET_BENCH_CLIENTS", "16")),
        requests=int(os.environ.get("PRIVET_BENCH_REQUESTS", "6")),
        items=int(os.environ.get("PRIVET_BENCH_ITEMS", "8")),
        rounds=int(os.environ.get("PRIVET_BENCH_ROUNDS", "2")),
        tiny=bool(os.environ.get("PRIVET_BENCH_TINY")),
    )
    assert figures["sqlite_per_s"] > 0 and figures["postgres_per_s"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    run(args.clients, args.requests, args.items, args.rounds, args.tiny)
