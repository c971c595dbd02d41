"""Monitoring page: an approver sees the `risk` version (approved, then suspended by the
live-quality judge when its accuracy fell below the floor) with its accuracy and
calibration charts, the alert that suspended it, and resumes it with a reason; a user
with no role in the project sees no version."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.conftest import axe_violations, sign_in


def test_approver_sees_charts_and_alert_and_resumes(  # type: ignore[no-untyped-def]
    console, browser, shots, suspended
) -> None:
    watched = sign_in(browser, console, "approver")
    page = watched.page
    page.get_by_role("link", name="Monitoring").click()
    page.wait_for_url("**/monitoring")  # a plain link: wait for its page
    section = page.get_by_role("region", name=f"risk v1 ({console.name}) SUSPENDED")
    assert section.is_visible()
    assert section.get_by_role("img", name="Live accuracy per window").is_visible()
    assert section.get_by_role("img", name="Calibration error per window").is_visible()
    alert = section.get_by_role("row").filter(has_text="accuracy (floor)")
    assert "suspend" in alert.inner_text() and "0.4000" in alert.inner_text()
    assert "below floor" in section.get_by_role("row").filter(has_text="0.400").first.inner_text()
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "monitoring.png"), full_page=True)

    section.get_by_label("Reason for resuming").fill("outcomes were mislabelled upstream")
    with page.expect_navigation():  # back to the same /monitoring: wait for the new page
        section.get_by_role("button", name="Resume risk v1").click()
    expect(page.get_by_role("region", name=f"risk v1 ({console.name}) serving")).to_be_visible()
    assert watched.problems == []
    watched.context.close()


def test_no_role_sees_no_version(console, browser, suspended) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "none")
    page = watched.page
    page.goto("/monitoring")
    assert page.get_by_text("No model version in service that you may monitor.").is_visible()
    watched.context.close()
