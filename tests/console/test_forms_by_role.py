"""Issue 20: a page shows an action's form only to a viewer the action's rule allows (the
same Cedar decision the submit makes); the auditor and the approver, who may list datasets
and jobs (the auditor also members) but neither upload, erase, train nor manage members,
see no such form; the admin sees them all, the trainer only the submit form. The submit
handlers keep their own checks (tested with each page)."""

from __future__ import annotations

from playwright.sync_api import Locator

from tests.console.conftest import Console, sign_in
from tests.datasets.conftest import make_rows, to_csv, upload

FORMS = {
    "/datasets": ("Upload a dataset to", "Erase subjects from"),
    "/training": ("Submit a training job in",),
    "/admin": ("Grant role in", "Invite to", "Revoke"),
}
LISTED = ("/datasets", "/training")  # pages every viewer here may list (a section each)


def _forms_seen(browser, console: Console, who: str) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    """Which of the pages' forms ``who`` sees in the test's own project."""
    page = sign_in(browser, console, who).page
    seen: dict[str, bool] = {}
    for path, names in FORMS.items():
        page.goto(path)
        section: Locator = page.locator(f"section[aria-labelledby='p-{console.ids['project']}-h']")
        if path in LISTED:
            assert section.count() == 1, (who, path, page.inner_text("main")[-800:])
        for name in names:
            form = section.locator("form").filter(has_text=name)
            summary = section.locator("summary").filter(has_text=name)
            button = section.get_by_role("button", name=name)
            seen[name] = form.count() + summary.count() + button.count() > 0
    page.context.close()
    return seen


def test_forms_follow_the_viewers_roles(console, browser) -> None:  # type: ignore[no-untyped-def]
    with console.server.client() as http:  # a dataset to erase from, by the root admin
        made = upload(http, None, console.ids["project"], to_csv(make_rows(40)))
        assert made.status_code == 201, made.text
    nothing = dict.fromkeys([name for names in FORMS.values() for name in names], False)
    assert _forms_seen(browser, console, "auditor") == nothing
    assert _forms_seen(browser, console, "approver") == nothing
    assert _forms_seen(browser, console, "admin") == dict.fromkeys(nothing, True)
    trainer = _forms_seen(browser, console, "ml_engineer")
    assert trainer == {**nothing, "Submit a training job in": True}
