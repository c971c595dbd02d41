"""A real `privet serve`: the canary never reaches disk or logs, and a load test on
PostgreSQL with several uvicorn workers and 64 concurrent clients.

The load test runs PRIVET_INFERENCE_LOAD_SECONDS (default 15) with
PRIVET_INFERENCE_LOAD_CLIENTS (default 64) clients; the issue's full run is 60 s:

    PRIVET_INFERENCE_LOAD_SECONDS=60 python -m pytest -s tests/inference/test_e2e.py -k load
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import predictor_key
from tests.e2e.conftest import Server, start_server, stop_server
from tests.inference.conftest import (
    LABELS,
    PURPOSE,
    classifier_weights,
    register_version,
    scan_files,
)
from tests.own_thread import in_own_thread

CANARY = "CANARY-7f3a91-zebra-quartz"
SUBJECT_CANARY = "SUBJECT-CANARY-5d20c4"


@dataclass
class Served:
    server: Server
    replicas: list[Server]
    runtime: Any
    project: str
    version_id: str
    predictor_key: str


def _serve_args(workers: int) -> tuple[str, ...]:
    from privet.cli import main

    args: tuple[str, ...] = ("--workers", str(workers))
    if "--no-worker" in inspect.getsource(main):
        args += ("--no-worker",)  # no training here: keep the cores for serving
    return args


def _served(
    tmp_path: Path,
    tiny_base: Any,
    *,
    database_url: str | None,
    workers: int,
    env: dict[str, str] | None = None,
    replicas: int = 1,
) -> Iterator[Served]:
    """``replicas`` servers on one home (same keys) and one database; the first is
    ``server``, all of them ``replicas``."""
    from privet.config import Settings
    from privet.db import dispose_engines
    from privet.jobs.catalog import write_catalog_file
    from privet.runtime import build_runtime

    home = tmp_path / "home"
    catalog = write_catalog_file(tmp_path / "catalog.json", [tiny_base])
    env = {"PRIVET_JOBS_EXTRA_CATALOG": str(catalog), **(env or {})}
    if database_url:
        env["PRIVET_DATABASE_URL"] = database_url
    server = start_server(home, env=env, args=_serve_args(workers))
    servers = [server]
    try:
        for _ in range(replicas - 1):
            servers.append(start_server(home, env=env, args=_serve_args(workers)))
        runtime = build_runtime(Settings(home=home, database_url=database_url))
        with server.client() as http:
            response = http.post("/v1/projects", json={"name": "serving"})
            assert response.status_code == 201, response.text
            project = response.json()["id"]
            creator = response.json()["created_by"]  # the admin: the app's accountable human
        version = register_version(
            runtime,
            project,
            base_model=tiny_base.name,
            weights=classifier_weights(tiny_base.name, len(LABELS)),
        )
        key = predictor_key(
            runtime, project, name="scoring-app", key_name="app key", creator=creator
        )
        yield Served(server, servers, runtime, project, version.id, key)
    finally:
        for each in servers:
            stop_server(each)
        dispose_engines()


def _predict_url(served: Served) -> str:
    return f"/v1/projects/{served.project}/models/risk/versions/1:predict"


@pytest.mark.slow
def test_canary_input_never_reaches_disk_or_logs(tmp_path: Path, tiny_base: Any) -> None:
    text = f"late payment {CANARY} on the credit card"
    # DEBUG: every logger speaks (SQLAlchemy logs each statement and its parameters).
    debug = {"PRIVET_LOG_LEVEL": "DEBUG"}
    for served in _served(tmp_path, tiny_base, database_url=None, workers=1, env=debug):
        headers = {"Authorization": f"Bearer {served.predictor_key}"}
        with httpx.Client(base_url=served.server.url, headers=headers, timeout=60) as http:
            item = {"text": text, "purpose": PURPOSE, "subject_id": SUBJECT_CANARY}
            r = http.post(_predict_url(served), json={"items": [item, item]})
            assert r.status_code == 200, r.text
            pid = r.json()["predictions"][0]["prediction_id"]
            explain = f"/v1/projects/{served.project}/predictions/{pid}:explain"
            assert http.post(explain, json={"text": text}).status_code == 200
            assert http.post(explain, json={"text": text + "!"}).status_code == 422
            mixed = {"items": [item, {**item, "purpose": "marketing"}]}
            assert http.post(_predict_url(served), json=mixed).status_code == 422
            bad = {"items": [{"text": text, "purpose": "Not A Purpose"}]}
            assert http.post(_predict_url(served), json=bad).status_code == 422
            denied = {"items": [{"text": text, "purpose": "marketing"}]}
            assert http.post(_predict_url(served), json=denied).status_code == 403
        log_text = served.server.logs()
        stop_server(served.server)
        needles = [
            CANARY.encode(),
            CANARY.encode("utf-16-le"),
            SUBJECT_CANARY.encode(),
            SUBJECT_CANARY.encode("utf-16-le"),
        ]
        assert scan_files(served.server.home, needles) == []
        assert scan_files(served.server.home, [b"scoring-app"])  # the scan does see the database
        assert CANARY not in log_text and SUBJECT_CANARY not in log_text
        assert "model version loaded" in log_text  # the DEBUG log was written and read


async def _client_loop(
    url: str, path: str, key: str, until: float, seed: int, tally: dict[str, Any]
) -> None:
    rng = random.Random(seed)
    words = "the loan was approved late payment high income low risk debt paid on time".split()
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as http:
        while time.monotonic() < until:
            n = rng.randint(1, 4)
            items = [
                {
                    "text": " ".join(rng.choices(words, k=rng.randint(3, 30))),
                    "purpose": PURPOSE,
                    "subject_id": f"customer-{rng.randint(1, 10_000)}",
                }
                for _ in range(n)
            ]
            started = time.perf_counter()
            try:
                response = await http.post(path, json={"items": items})
            except httpx.HTTPError as exc:
                tally["errors"].append(repr(exc))
                continue
            tally["latencies"].append(time.perf_counter() - started)
            if response.status_code != 200:
                tally["errors"].append(f"{response.status_code}: {response.text[:300]}")
                continue
            preds = response.json()["predictions"]
            if len(preds) != n:
                tally["errors"].append(f"{len(preds)} predictions for {n} texts")
            tally["ids"].update(p["prediction_id"] for p in preds)
            tally["requests"] += 1


@pytest.mark.slow
@pytest.mark.postgres
def test_load_many_clients_every_prediction_is_a_ledger_event(
    tmp_path: Path, tiny_base: Any, pg_databases: Any
) -> None:
    from sqlalchemy import func, select

    from privet.db import session_scope
    from privet.inference.tables import Prediction
    from privet.ledger.sequencer import get_ledger
    from privet.ledger.tables import LedgerLeaf
    from privet.ledger.verify import verify_ledger

    seconds = float(os.environ.get("PRIVET_INFERENCE_LOAD_SECONDS", "15"))
    clients = int(os.environ.get("PRIVET_INFERENCE_LOAD_CLIENTS", "64"))
    workers = int(os.environ.get("PRIVET_INFERENCE_LOAD_WORKERS", "1"))
    replicas = int(os.environ.get("PRIVET_INFERENCE_LOAD_REPLICAS", "2"))
    url = pg_databases.new()
    # One torch thread per worker: the workers share the cores.
    env = {"PRIVET_INFERENCE_TORCH_THREADS": os.environ.get("PRIVET_INFERENCE_TORCH_THREADS", "1")}
    served_all = _served(
        tmp_path, tiny_base, database_url=url, workers=workers, env=env, replicas=replicas
    )
    warm = 4 * workers * replicas
    for served in served_all:
        # Warm every worker's cache outside the timed window (the first load is ~0.1 s).
        for replica in served.replicas:
            with httpx.Client(
                base_url=replica.url,
                headers={"Authorization": f"Bearer {served.predictor_key}"},
                timeout=60,
            ) as http:
                for _ in range(4 * workers):
                    item = {"text": "warm up", "purpose": PURPOSE}
                    response = http.post(_predict_url(served), json={"items": [item]})
                    assert response.status_code == 200
        tally: dict[str, Any] = {"ids": set(), "errors": [], "latencies": [], "requests": 0}
        until = time.monotonic() + seconds

        async def run_all(served: Served = served) -> None:
            await asyncio.gather(
                *(
                    _client_loop(
                        served.replicas[seed % len(served.replicas)].url,
                        _predict_url(served),
                        served.predictor_key,
                        until,
                        seed,
                        tally,
                    )
                    for seed in range(clients)
                )
            )

        started = time.monotonic()
        in_own_thread(asyncio.run, run_all())
        elapsed = time.monotonic() - started
        returned = len(tally["ids"]) + warm  # plus the warm-up predictions
        lat = sorted(tally["latencies"])
        print(
            f"\nload: {clients} clients x {elapsed:.1f} s, {replicas} replicas x {workers} "
            f"uvicorn workers on PostgreSQL: {tally['requests']} requests, "
            f"{len(tally['ids'])} predictions "
            f"({len(tally['ids']) / elapsed:.0f}/s), p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
            f"p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms, errors {len(tally['errors'])}"
        )
        assert tally["errors"] == [], tally["errors"][:5]
        assert tally["requests"] > 0

        # "Afterwards": the servers are gone (their sequencers too), then the tree is
        # completed and checked, with the server's signing key (under its home).
        for replica in served.replicas:
            stop_server(replica)
        get_ledger(served.runtime.engine, served.runtime.settings).integrate_now()
        with session_scope(served.runtime.engine) as session:
            events = session.execute(
                select(func.count()).where(LedgerLeaf.type == "prediction.made")  # type: ignore[arg-type]
            ).scalar_one()
            rows = session.execute(select(func.count()).select_from(Prediction)).scalar_one()
            report = verify_ledger(session=session)
        print(f"ledger: {events} prediction events; {report.message}")
        assert events == returned
        assert rows == returned
        assert report.ok, f"{report.message}\n{_unintegrated(served.runtime.engine)}"


def _unintegrated(engine: Any) -> str:
    """Diagnostics for a failed verification: entries without a leaf, and the floors."""
    from sqlalchemy import text

    with engine.connect() as conn:
        lost = conn.execute(
            text(
                "SELECT e.id, e.created_at, convert_from(e.event, 'UTF8') FROM ledger_entries e "
                "WHERE NOT EXISTS (SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id) "
                "ORDER BY e.id LIMIT 5"
            )
        ).all()
        states = conn.execute(
            text(
                "SELECT id, tree_size, floor_entry_id, created_at FROM ledger_tree_states "
                "ORDER BY id LIMIT 40"
            )
        ).all()
    return "\n".join([*(str(r)[:300] for r in lost), *(str(r) for r in states)])


@pytest.mark.slow
def test_cli_predict_texts_and_file(tmp_path: Path, tiny_base: Any) -> None:
    import json
    import subprocess

    from tests.e2e.conftest import PRIVET

    for served in _served(tmp_path, tiny_base, database_url=None, workers=1):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PRIVET_")},
            "PRIVET_URL": served.server.url,
            "PRIVET_API_KEY": served.predictor_key,
            "COLUMNS": "200",
        }
        base = [PRIVET, "predict", "--project", served.project, "--purpose", PURPOSE]

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*base, *args], env=env, capture_output=True, text=True, timeout=120
            )

        shown = run("--model", "risk", "the loan was approved", "late payment")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.count("prd_") == 2 and "risk" not in shown.stderr

        lines = [{"text": f"customer {i} paid on time", "subject_id": f"c{i}"} for i in range(70)]
        lines[3]["purpose"] = "marketing"  # refused by policy: the command says so
        source = tmp_path / "texts.jsonl"
        source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        refused = run("--model", "risk@1", "--file", str(source), "--batch-size", "16")
        assert refused.returncode == 1 and "error 403" in refused.stderr

        del lines[3]["purpose"]
        source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        out = tmp_path / "out.jsonl"
        done = run("--model", "risk@1", "--file", str(source), "--output", str(out))
        assert done.returncode == 0, done.stderr
        results = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(results) == 70 and all(r["model_version"] == 1 for r in results)
        assert "70 predictions written" in done.stderr

        plain = tmp_path / "texts.txt"
        plain.write_text("one text\n\nanother text\n")
        as_json = run("--model", "risk", "--file", str(plain))
        assert as_json.returncode == 0 and len(as_json.stdout.splitlines()) == 2

        missing = run("--model", "nope", "x")
        assert missing.returncode == 1 and "error 404" in missing.stderr
        bad = run("--model", "risk@", "x")
        assert bad.returncode == 2
