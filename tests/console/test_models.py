"""Models page: an approver is refused on their own model (the four-eyes rule, named and
explained) and approves another's; a model name a user set renders inert."""

from __future__ import annotations

from tests.console.conftest import axe_violations, sign_in


def test_four_eyes_refuses_own_model_and_approves_another(console, browser, shots) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "approver")
    page = watched.page
    page.get_by_role("link", name="Models").click()
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "models.png"), full_page=True)

    page.get_by_role("button", name="Approve own-model v1").click()
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    refusal = page.get_by_role("alert").inner_text()
    assert "model.segregation-of-duties" in refusal or "four-eyes" in refusal.lower(), refusal

    page.goto("/models")
    page.get_by_role("button", name="Approve risk v1").click()
    page.wait_for_url("**/models")
    assert page.get_by_role("heading", name=f"risk v1 ({console.name}, approved)").is_visible()
    assert [p for p in watched.problems if "status of 403" not in p] == []  # the refusal
    watched.context.close()
