"""Keyset paging of the console's list pages, through the real server: following each
page's "next" link from the first page lists every row once (none lost, none repeated),
in order, and a cursor the page did not issue is refused with a 4xx naming the rule."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.console.conftest import Console
from tests.console.support import register_version, signed_in

NEXT = re.compile(r'<a href="([^"]+)" rel="next">')
VERSION = re.compile(r'<h2 id="mv-([^"]+)">')
MEMBER = re.compile(r'/members/([^/"]+)/remove"')  # a binding's revoke form
EXTRA_VERSIONS = 7
EXTRA_MEMBERS = 55  # more than the Administration page's 50 per project


@pytest.fixture
def seeded(console: Console) -> Console:
    """More versions (registry) and members (auth service) than one page holds."""
    from privet.db import session_scope
    from tests.conftest import seed_principal

    runtime = console.runtime
    for i in range(EXTRA_VERSIONS):
        register_version(
            runtime,
            project=console.ids["project"],
            model_name=f"paged-{i % 3}",
            job_id=f"job_paged{i}",
            submitted_by=console.ids["ml_engineer"],
        )
    with session_scope(runtime.engine) as session:
        for i in range(EXTRA_MEMBERS):
            seed_principal(session, "ml_engineer", console.ids["project"], f"Paged member {i}")
    return console


def _walk(http: httpx.Client, first: str, row: re.Pattern[str]) -> tuple[list[str], int]:
    """Every row from ``first`` on, following the next links; and how many pages."""
    rows: list[str] = []
    address: str | None = first
    pages = 0
    while address is not None:
        answer = http.get(address.replace("&amp;", "&"))
        assert answer.status_code == 200, answer.text[-500:]
        rows += row.findall(answer.text)
        pages += 1
        found = NEXT.search(answer.text)
        address = found.group(1) if found else None
    return rows, pages


def test_models_pages_list_every_version_once_newest_first(seeded: Console) -> None:
    http = signed_in(seeded.url, seeded.keys["approver"])
    try:
        everything, _ = _walk(http, "/models?limit=100", VERSION)
        assert len(everything) >= EXTRA_VERSIONS
        paged, pages = _walk(http, "/models?limit=2", VERSION)
        assert pages == -(-len(everything) // 2)
        assert paged == everything  # same rows, same order, none twice

        candidates, _ = _walk(http, "/models?state=candidate&limit=3", VERSION)
        assert candidates == _walk(http, "/models?state=candidate&limit=100", VERSION)[0]
        assert candidates and set(candidates) <= set(everything)

        refused = http.get("/models?after=not-a-cursor")
        assert refused.status_code == 422
        assert "cursor" in refused.text
    finally:
        http.close()


def test_admin_pages_one_projects_members(seeded: Console) -> None:
    http = signed_in(seeded.url, seeded.keys["admin"])
    try:
        with seeded.server.client(seeded.keys["admin"]) as api:
            bound = api.get(f"/v1/projects/{seeded.ids['project']}/members").json()
        assert len(bound) > 50
        first = http.get("/admin").text
        assert len(MEMBER.findall(first)) == 50
        members, pages = _walk(http, "/admin", MEMBER)
        assert pages == -(-len(bound) // 50)
        assert len(members) == len(set(members))  # none twice
        assert set(members) == {b["id"] for b in bound}  # none lost
    finally:
        http.close()
