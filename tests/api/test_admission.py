"""PRIVET_ACTIVE_REQUESTS: API requests work a bounded number at a time, admitted first come,
first served (privet.api.admission, issue 23)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from privet.api.admission import RequestAdmission
from privet.config import Settings, clear_settings_caches
from privet.ledger.sequencer import integrate_now
from tests.conftest import Caller
from tests.own_thread import in_own_thread


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """This module's gateway admits one request at a time."""
    return Settings(home=tmp_path / "home", database_url=db_url, active_requests=1)


@pytest.mark.parametrize(
    ("value", "why"),
    [("0", "greater than or equal to 1"), ("33", "less than or equal to 32"), ("all", "integer")],
)
def test_serve_refuses_a_bad_value(
    value: str, why: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from privet.cli.main import app as cli_app

    monkeypatch.setenv("PRIVET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PRIVET_ACTIVE_REQUESTS", value)
    clear_settings_caches()
    res = CliRunner().invoke(cli_app, ["serve", "--no-worker"])
    assert res.exit_code == 1, res.output
    said = " ".join(res.output.split())
    assert f"error: PRIVET_ACTIVE_REQUESTS={value!r}" in said and why in said, said
    assert not (tmp_path / "home").exists()  # refused before anything was written


def test_slots_bound_the_requests_at_work_and_admit_in_arrival_order() -> None:
    admission = RequestAdmission(2)
    admitted: list[int] = []
    at_work = [0, 0]  # now, most

    async def request(i: int, queued: anyio.Event, done: anyio.Event) -> None:
        slot = await admission.enter() if i < 2 else None
        queued.set()
        if slot is None:
            slot = await admission.enter()
        admitted.append(i)
        at_work[0] += 1
        at_work[1] = max(at_work)
        await done.wait()
        at_work[0] -= 1
        slot.leave()
        slot.leave()  # a second leave gives nothing back

    async def main() -> None:
        done = [anyio.Event() for _ in range(6)]
        async with anyio.create_task_group() as tg:
            for i in range(6):  # each queues before the next one starts
                queued = anyio.Event()
                tg.start_soon(request, i, queued, done[i])
                await queued.wait()
            await anyio.wait_all_tasks_blocked()
            assert admitted == [0, 1] and admission.waiting == 4
            for i in (1, 0, 2, 3, 4, 5):  # any slot freed goes to the longest waiter
                done[i].set()
                await anyio.wait_all_tasks_blocked()
        assert admitted == [0, 1, 2, 3, 4, 5] and at_work[1] == 2 and admission.waiting == 0

    in_own_thread(anyio.run, main)


def _decisions(runtime: Any, project: str) -> int:
    integrate_now(runtime.engine, checkpoint=False)
    with runtime.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM ledger_leaves WHERE type = 'auth.decision' "
                    "AND project = :p"
                ),
                {"p": project},
            ).scalar_one()
        )


def test_concurrent_requests_take_turns(client: Any, admin: Caller, runtime: Any) -> None:
    """One slot: 16 concurrent requests (reads, writes that take SQLite's write lock,
    refusals) take turns; every one is answered and every decision is in the ledger."""
    created = client.post("/v1/projects", json={"name": "p"}, headers=admin.headers)
    assert created.status_code == 201, created.text
    project = created.json()["id"]
    before = _decisions(runtime, project)

    def call(i: int) -> int:
        if i % 4 == 0:
            body = {"name": f"p{i}"}
            return int(client.post("/v1/projects", json=body, headers=admin.headers).status_code)
        headers = {"Authorization": "Bearer pvt_bad"} if i % 4 == 1 else admin.headers
        return int(client.get(f"/v1/projects/{project}", headers=headers).status_code)

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(call, range(16)))
    assert codes == [[201, 401, 200, 200][i % 4] for i in range(16)]
    assert _decisions(runtime, project) == before + 8  # the 8 reads (a 401 decides nothing)
    assert client.app.state.admission.waiting == 0


def test_an_upload_is_not_admitted(client: Any, admin: Caller) -> None:
    """An upload reads its body while it runs: it neither waits for a slot nor holds one.
    With the only slot taken, an upload is answered while a read waits for the slot."""
    from tests.datasets.conftest import make_rows, to_csv, upload

    project = client.post("/v1/projects", json={"name": "p"}, headers=admin.headers).json()["id"]
    admission = client.app.state.admission
    slot = client.portal.call(admission.enter)
    with ThreadPoolExecutor(2) as pool:
        read = pool.submit(client.get, f"/v1/projects/{project}", headers=admin.headers)
        while admission.waiting == 0 and not read.done():
            time.sleep(0.01)
        assert admission.waiting == 1
        uploaded = pool.submit(upload, client, admin.headers, project, to_csv(make_rows(20)))
        assert uploaded.result(timeout=120).status_code == 201
        assert not read.done()
        client.portal.call(slot.leave)
        assert read.result(timeout=120).status_code == 200
