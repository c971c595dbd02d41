"""Reports page: an auditor finds every kind of the registry, previews the RoPA in the
page (under the console's CSP) and downloads it in each format, each document the API
would issue; an approver sees only the kinds and scopes their project role allows."""

from __future__ import annotations

import json

from privet.reports import REGISTRY
from tests.console.conftest import axe_violations, sign_in


def test_auditor_previews_and_downloads_every_format(console, browser, shots) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "auditor")
    page = watched.page
    page.get_by_role("link", name="Reports").click()
    page.wait_for_url("**/reports")  # a plain link: wait for its page
    for kind in REGISTRY:
        assert page.get_by_role("heading", name=kind, exact=True).is_visible(), kind
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "reports.png"), full_page=True)

    page.get_by_role("button", name="Preview the ropa report").click()
    page.wait_for_url("**/reports/ropa/preview?**")
    assert page.get_by_role("heading", name="Record of processing activities", level=1).count()
    assert page.get_by_role("cell", name=console.name, exact=True).count() >= 1
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "report-preview.png"), full_page=True)

    got: dict[str, bytes] = {}
    for fmt in ("JSON", "CSV", "HTML", "PDF"):
        with page.expect_download() as info:
            page.get_by_role("link", name=f"Download {fmt}").click()
        got[fmt] = info.value.path().read_bytes()
    assert json.loads(got["JSON"])["report"]["kind"] == "ropa"
    assert got["CSV"].decode().startswith("table,")
    assert got["HTML"].startswith(b"<!DOCTYPE html>")
    assert got["PDF"].startswith(b"%PDF")
    assert watched.problems == []
    watched.context.close()


def test_approver_sees_only_their_scopes(console, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "approver")
    page = watched.page
    page.goto("/reports")
    shown = set(page.locator("section h2").all_inner_texts())
    assert shown == {"model-lineage", "monitoring"}, shown
    scopes = page.get_by_label("Scope").first.locator("option").all_inner_texts()
    assert scopes == [console.name]
    watched.context.close()
