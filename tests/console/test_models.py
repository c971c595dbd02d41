"""Models page: an approver is offered no approval of their own model, and a forged one is
refused (the four-eyes rule, named and explained); they approve another's; a model name a
user set renders inert."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.conftest import axe_violations, csrf_of, session_http, sign_in


def test_four_eyes_refuses_own_model_and_approves_another(console, browser, shots) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "approver")
    page = watched.page
    page.get_by_role("link", name="Models").click()
    page.wait_for_url("**/models")  # a plain link: wait for its page
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "models.png"), full_page=True)

    assert page.get_by_role("button", name="Approve own-model v1").count() == 0
    assert page.get_by_role("button", name="Retire own-model v1").is_visible()
    with session_http(console, watched) as http:  # hiding the form is not the boundary
        forged = http.post(
            f"/models/{console.ids['project']}/{console.ids['version:own-model']}/approve",
            data={"csrf": csrf_of(page)},
            headers={"origin": console.url},
        )
    assert forged.status_code == 403, forged.text
    assert "model.segregation-of-duties" in forged.text, forged.text

    with page.expect_navigation():  # back to the same /models: wait for the new page
        page.get_by_role("button", name="Approve risk v1").click()
    expect(page.get_by_role("heading", name=f"risk v1 ({console.name}, approved)")).to_be_visible()
    assert watched.problems == []
    watched.context.close()
