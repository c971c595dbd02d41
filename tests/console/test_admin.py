"""Administration page: a project admin creates an API key (its secret shown once: reload
and it is gone), grants a role and revokes it; names a user typed render inert; the key
scenario works by keyboard alone."""

from __future__ import annotations

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import XSS, axe_violations, sign_in


def test_admin_key_shown_once_then_grant_and_revoke(console, browser, shots) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "admin")
    page = watched.page
    page.get_by_role("link", name="Administration").click()
    page.wait_for_url("**/admin")
    assert page.get_by_role("heading", name=f"Members of {console.name}").is_visible()

    page.get_by_label("Key name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("The new key").input_value()
    assert secret.startswith("pk_") or len(secret) > 20, secret
    with httpx.Client(base_url=console.url) as http:  # the key shown works on the API
        me = http.get("/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 200 and me.json()["principal_id"] == console.ids["admin"]
    assert page.get_by_role("cell", name="laptop", exact=True).is_visible()
    page.reload()
    assert page.get_by_label("The new key").count() == 0
    assert secret not in page.content()

    page.get_by_label("Principal id").fill(console.ids["none"])
    page.get_by_label("Role", exact=True).select_option("predictor")
    page.get_by_role("button", name=f"Grant role in {console.name}").click()
    page.wait_for_url("**/admin#p-*")
    revoke = page.get_by_role("button", name="Revoke predictor from Nobody")
    assert revoke.is_visible()
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "admin.png"), full_page=True)
    with page.expect_navigation():  # back to the same /admin#p-...: wait for the new page
        revoke.click()
    expect(page.get_by_role("button", name="Revoke predictor from Nobody")).to_have_count(0)

    page.get_by_role("button", name="Revoke key laptop").click()
    page.wait_for_url("**/admin#keys")
    with httpx.Client(base_url=console.url) as http:
        gone = http.get("/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert gone.status_code == 401
    assert watched.problems == []
    watched.context.close()


def test_names_typed_by_users_render_inert(console, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "admin")
    page = watched.page
    page.on("dialog", lambda d: (_ for _ in ()).throw(AssertionError(d.message)))
    page.goto("/admin")
    page.get_by_label("Key name").fill(XSS)
    page.get_by_role("button", name="Create key").click()
    page.get_by_label("The new key").wait_for()
    page.get_by_label("or a new service account named").fill(XSS)
    page.get_by_role("button", name=f"Grant role in {console.name}").click()
    page.wait_for_url("**/admin#p-*")
    assert page.get_by_role("cell", name=XSS, exact=True).count() == 2  # key and member
    assert page.evaluate("window.__pwned") is None
    assert [p for p in watched.problems if "Content Security Policy" not in p] == []
    watched.context.close()


def _tab_to(page: Page, target: Locator) -> None:
    """Press Tab until ``target`` has the focus (at most 40 times), and check it shows."""
    for _ in range(40):
        page.keyboard.press("Tab")
        if target.evaluate("e => e === document.activeElement"):
            break
    else:
        raise AssertionError(f"Tab never reached {target}")
    ring = target.evaluate(
        "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]"
    )
    assert ring == ["solid", "3px"]  # the console's focus ring, not the browser's faint one


def test_keyboard_only_creates_a_key(console, browser) -> None:  # type: ignore[no-untyped-def]
    """From Home to a new key with Tab, Enter and typing only."""
    watched = sign_in(browser, console, "admin")
    page = watched.page
    _tab_to(page, page.get_by_role("link", name="Administration"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin")
    _tab_to(page, page.get_by_label("Key name"))
    page.keyboard.type("keyboard")
    page.keyboard.press("Enter")
    assert page.get_by_label("The new key").input_value()
    assert page.get_by_role("cell", name="keyboard", exact=True).is_visible()
    watched.context.close()


def test_each_viewer_sees_only_what_their_roles_allow(console, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "approver")  # no member.list in policies
    page = watched.page
    page.goto("/admin")
    assert page.get_by_role("heading", name=f"Members of {console.name}").count() == 0
    keys = page.locator("#keys").inner_text()
    assert "Alex Approver key" in keys and "Pat Admin key" not in keys  # own keys only
    watched.context.close()

    watched = sign_in(browser, console, "none")  # no role anywhere
    page = watched.page
    page.goto("/datasets")
    assert page.get_by_text("No project where you may list datasets.").is_visible()
    page.goto("/training")
    assert page.get_by_text("No project where you may list training jobs.").is_visible()
    watched.context.close()


def test_master_key_status_for_platform_admins_only(console, browser, shots) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "root")  # the platform-wide admin
    page = watched.page
    page.goto("/admin")
    panel = page.get_by_role("table", name="Master key")
    assert "reachable" in panel.get_by_role("row", name="Status").inner_text()
    assert panel.get_by_role("row", name="Provider").inner_text().endswith("local key file")
    assert panel.get_by_role("row", name="Key id").inner_text().endswith("local")
    assert panel.get_by_role("row", name="Current version").inner_text().endswith("1")
    assert panel.get_by_role("row", name="Versions").inner_text().endswith("v1 active")
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "admin-master-key.png"), full_page=True)
    assert watched.problems == []
    watched.context.close()

    watched = sign_in(browser, console, "admin")  # a project's admin: not the platform's
    watched.page.goto("/admin")
    assert watched.page.get_by_role("table", name="Master key").count() == 0
    assert watched.page.get_by_text("master_key.status").is_visible()
    watched.context.close()
