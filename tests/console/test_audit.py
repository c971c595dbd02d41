"""Audit page: an auditor browses and filters events, pages on, opens a proof, verifies
the live log and downloads a bundle that `privet-audit verify` accepts; someone without
a role gets the 403 page, and the denial is in the ledger."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.console.conftest import axe_violations, sign_in

PRIVET_AUDIT = str(Path(sys.executable).with_name("privet-audit"))


def test_auditor_browses_proves_verifies_and_exports(console, browser, shots, tmp_path) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "auditor")
    page = watched.page
    page.get_by_role("link", name="Audit").click()
    page.wait_for_url("**/audit")  # a plain link: wait for its page
    assert page.get_by_role("heading", name="Audit", level=1).is_visible()
    assert page.get_by_text("Tree size").is_visible()  # the latest checkpoint
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "audit.png"), full_page=True)

    page.get_by_label("Type").fill("model_version.registered")
    page.get_by_label("Project").fill(console.ids["project"])
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit?*type=model_version.registered*")  # a GET form: a new page
    rows = page.locator("tbody tr")
    assert rows.count() == 2

    first = rows.first.locator("td").first.inner_text()
    proof = page.get_by_role("button", name=f"Inclusion proof of event {first}")
    # an event gets a proof once a signed checkpoint covers it (one is signed every 10 s
    # while the log grows; each reload's own decision grows it)
    for _ in range(30):
        if proof.count():
            break
        assert page.get_by_text("after the next signed checkpoint").first.is_visible()
        page.wait_for_timeout(1000)
        page.reload()
    proof.click()
    page.get_by_text(f"Leaf {first} is in the tree").wait_for()

    page.get_by_role("button", name="Verify the live log").click()
    page.get_by_role("status").wait_for()
    assert page.get_by_role("status").inner_text().startswith("Verified")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download a bundle").click()
    bundle = tmp_path / "bundle.jsonl"
    info.value.save_as(bundle)
    checked = subprocess.run(
        [PRIVET_AUDIT, "verify", str(bundle)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert watched.problems == []
    watched.context.close()


def test_keyset_paging_goes_on_from_the_last_index(console, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "auditor")
    page = watched.page
    page.goto("/audit?limit=10")
    indexes = [int(t) for t in page.locator("tbody tr td:first-child").all_inner_texts()]
    assert len(indexes) == 10 and indexes == sorted(indexes)
    page.get_by_role("link", name="Next events").click()
    page.wait_for_url(f"**/audit?start={indexes[-1] + 1}&*")  # a plain link: wait for its page
    following = [int(t) for t in page.locator("tbody tr td:first-child").all_inner_texts()]
    assert following and following[0] == indexes[-1] + 1
    assert "limit=10" in page.url
    watched.context.close()


def test_no_role_gets_the_403_page_and_the_denial_is_logged(console, browser, shots) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "none")
    page = watched.page
    response = page.goto("/audit")
    assert response is not None and response.status == 403
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    assert "audit.events.read" in page.get_by_role("alert").inner_text()
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "forbidden.png"), full_page=True)
    watched.context.close()
    nobody = console.ids["none"]
    with console.server.client(console.keys["auditor"]) as http:
        http.get("/v1/audit/export")  # integrates every appended event
        page_of = http.get(
            "/v1/audit/events", params={"type": "auth.decision", "actor": nobody, "limit": 1000}
        ).json()
    denials = [
        i["event"]
        for i in page_of["items"]
        if i["event"]["outcome"] == "deny"
        and i["event"]["details"]["action"] == "audit.events.read"
    ]
    assert denials, page_of
