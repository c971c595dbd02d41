"""The CLI pages the lists the way the API does: one page with the cursor of the next on
stderr, --after to go on, --all to follow the pages to the end."""

from __future__ import annotations

import json
from typing import Any

from privet.compliance.tables import DataSubjectRequest
from privet.jobs.tables import TrainingJob
from tests.paging.rows import dsr_row, insert_rows, job_row


def test_list_commands_follow_the_cursor(cli, client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    project = client.post("/v1/projects", json={"name": "p"}, headers=admin.headers).json()["id"]
    with runtime.engine.begin() as conn:
        insert_rows(conn, TrainingJob, [job_row(i, project=project) for i in range(25)])
        insert_rows(conn, DataSubjectRequest, [dsr_row(i) for i in range(9)])
    key = admin.key

    first = cli("train", "list", project, "--limit", "10", "-o", "json", key=key)
    assert first.exit_code == 0, first.output
    rows: list[dict[str, Any]] = json.loads(first.stdout)
    assert [r["id"] for r in rows] == [f"job_{i:08d}" for i in range(24, 14, -1)]
    cursor = first.stderr.split("--after ")[1].split()[0]
    second = cli(
        "train", "list", project, "--limit", "10", "--after", cursor, "-o", "json", key=key
    )
    assert json.loads(second.stdout)[0]["id"] == "job_00000014"

    everything = cli("train", "list", project, "--limit", "10", "--all", "-o", "json", key=key)
    assert len(json.loads(everything.stdout)) == 25 and "--after" not in everything.stderr
    requests = cli("dsr", "list", "--limit", "2", "--all", "--json", key=key)
    assert requests.exit_code == 0, requests.output
    assert len({r["id"] for r in json.loads(requests.stdout)}) == 9
    bad = cli("dsr", "list", "--after", "٣", key=key)
    assert bad.exit_code == 1 and "cursor" in bad.output
