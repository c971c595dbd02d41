"""Accepting an invitation on the sign-in page: a project admin invites a person (the
token shown once, the name they typed inert), the person accepts and is signed in with
their own new key; the token does not work twice; a bad token is refused with the reason
and signs nobody in."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console.conftest import XSS, Console, Watched, axe_violations, sign_in


def _accept(page: Page, token: str) -> None:
    page.goto("/sign-in")
    page.get_by_role("link", name="Accept an invitation").click()
    page.get_by_label("Invitation token").fill(token)
    page.get_by_role("button", name="Accept the invitation").click()


def _session(watched: Watched) -> str | None:
    return {c["name"]: c["value"] for c in watched.context.cookies()}.get("privet_session")


def test_invited_person_accepts_once_and_is_signed_in(console: Console, browser, shots) -> None:  # type: ignore[no-untyped-def]
    admin = sign_in(browser, console, "admin")
    admin.page.on("dialog", lambda d: (_ for _ in ()).throw(AssertionError(d.message)))
    admin.page.goto("/admin")
    admin.page.get_by_label("Name of the person to invite").fill(XSS)
    admin.page.get_by_label("Their role").select_option("approver")
    admin.page.get_by_role("button", name=f"Invite to {console.name}").click()
    token = admin.page.get_by_label("The invitation token").input_value()
    assert admin.page.evaluate("window.__pwned") is None
    assert axe_violations(admin.page) == []
    admin.context.close()

    person = Watched(browser.new_context(base_url=console.url))
    person.page.on("dialog", lambda d: (_ for _ in ()).throw(AssertionError(d.message)))
    _accept(person.page, token)
    key = person.page.get_by_label("The new key").input_value()
    assert key.startswith("pvt_") and _session(person)
    assert person.page.evaluate("window.__pwned") is None
    assert axe_violations(person.page) == []
    person.page.screenshot(path=str(shots / "invitation-accepted.png"), full_page=True)
    person.page.get_by_role("link", name="Continue to the console").click()
    person.page.get_by_role("link", name="Models").click()
    # an approver (waits for the page: the form is there only once its decision is made)
    expect(person.page.get_by_role("button", name="Approve risk v1")).to_be_visible()
    assert [p for p in person.problems if "Content Security Policy" not in p] == []
    person.context.close()

    again = Watched(browser.new_context(base_url=console.url))
    _accept(again.page, token)
    assert "already" in again.page.get_by_role("alert").inner_text()
    assert _session(again) is None
    again.context.close()


def test_a_bad_token_is_refused_with_the_reason(console: Console, browser) -> None:  # type: ignore[no-untyped-def]
    watched = Watched(browser.new_context(base_url=console.url))
    _accept(watched.page, "pvi_not-a-token")
    assert "malformed" in watched.page.get_by_role("alert").inner_text()
    assert _session(watched) is None
    watched.context.close()
