"""Issue 20: a page shows an action's form only to a viewer the action's rule allows (the
same Cedar decision the submit makes); the auditor and the approver, who may list datasets
and jobs (the auditor also members) but neither upload, erase, train, manage members nor
key a service account, see no such form; the admin sees them all, the trainer only the
submit form. Your own key's form follows `api_key.create` too (a project-scoped session
may not mint an unscoped key), and a suspended version's Resume form
`model_version.resume` (its trainer and the auditor may not; the project admin may). Each
form a role may use is used here end to end; the submit handlers keep their own checks
(tested with each page)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Locator, expect

from tests.console.conftest import Console, sign_in
from tests.datasets.conftest import make_rows, to_csv, upload

SA_KEY = "Create a key for a service account of"
FORMS = {
    "/datasets": ("Upload a dataset to", "Erase subjects from"),
    "/training": ("Submit a training job in",),
    "/admin": ("Grant role in", "Invite to", "Revoke", SA_KEY),
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


def _service_account(console: Console, name: str, project: str | None = None) -> str:
    """A service account of the test's project (or ``project``), a predictor there, bound
    by the root admin."""
    with console.server.client() as http:
        bound = http.post(
            f"/v1/projects/{project or console.ids['project']}/members",
            json={"role": "predictor", "service_account_name": name},
        )
        assert bound.status_code == 201, bound.text
        return str(bound.json()["principal_id"])


def _whoami(console: Console, key: str) -> httpx.Response:
    with httpx.Client(base_url=console.url) as http:
        return http.get("/v1/me", headers={"Authorization": f"Bearer {key}"})


def test_forms_follow_the_viewers_roles(console, browser) -> None:  # type: ignore[no-untyped-def]
    with console.server.client() as http:  # a dataset to erase from, by the root admin
        made = upload(http, None, console.ids["project"], to_csv(make_rows(40)))
        assert made.status_code == 201, made.text
    _service_account(console, "scorer")  # a service account to key
    nothing = dict.fromkeys([name for names in FORMS.values() for name in names], False)
    assert _forms_seen(browser, console, "auditor") == nothing
    assert _forms_seen(browser, console, "approver") == nothing
    assert _forms_seen(browser, console, "admin") == dict.fromkeys(nothing, True)
    trainer = _forms_seen(browser, console, "ml_engineer")
    assert trainer == {**nothing, "Submit a training job in": True}


def test_admin_keys_a_service_account_of_the_project(console, browser) -> None:  # type: ignore[no-untyped-def]
    """Only the project's own service accounts are offered: one of another project, bound
    here too, is not (keys.service-account-of-the-project)."""
    account = _service_account(console, "batch-scorer")
    with console.server.client() as http:
        other = http.post("/v1/projects", json={"name": f"{console.name}-other"})
        assert other.status_code == 201, other.text
        outsider = _service_account(console, "outsider", other.json()["id"])
        bound = http.post(
            f"/v1/projects/{console.ids['project']}/members",
            json={"role": "predictor", "principal_id": outsider},
        )
        assert bound.status_code == 201, bound.text
    watched = sign_in(browser, console, "admin")
    page = watched.page
    page.goto("/admin")
    section = page.locator(f"section[aria-labelledby='p-{console.ids['project']}-h']")
    expect(section.get_by_role("cell", name=outsider, exact=True)).to_be_visible()  # a member
    offered = section.get_by_label("Service account", exact=True).locator("option")
    assert offered.all_inner_texts() == ["batch-scorer"]
    section.get_by_label("Service account", exact=True).select_option(account)
    section.get_by_label("Name of its key").fill("nightly scoring")
    section.get_by_role("button", name=f"{SA_KEY} {console.name}").click()
    secret = page.get_by_label("The new key").input_value()  # waits for the answer's page
    me = _whoami(console, secret)
    assert me.status_code == 200 and me.json()["principal_id"] == account, me.text
    assert watched.problems == []
    watched.context.close()


def test_own_key_form_follows_the_signed_in_key(console, browser) -> None:  # type: ignore[no-untyped-def]
    """A session signed in with a key scoped to the project may not mint the unscoped key
    the form asks for (keys.scope-no-wider): no form, the rule named; the same person
    signed in with an unscoped key creates one and revokes it."""
    from privet.db import session_scope
    from tests.conftest import mint_key

    with session_scope(console.runtime.engine) as session:
        scoped = mint_key(
            session,
            console.runtime,
            console.ids["ml_engineer"],
            "scoped key",
            project_id=console.ids["project"],
        )
    console.keys["scoped"] = str(scoped.key)
    watched = sign_in(browser, console, "scoped")
    page = watched.page
    page.goto("/admin")
    keys = page.get_by_role("region", name="Your API keys")
    expect(keys.get_by_text("Tom Trainer key", exact=True)).to_be_visible()
    assert keys.get_by_role("button", name="Create key").count() == 0
    assert keys.get_by_label("Key name").count() == 0
    expect(keys.get_by_text("api_key.create")).to_be_visible()
    watched.context.close()

    watched = sign_in(browser, console, "ml_engineer")
    page = watched.page
    page.goto("/admin")
    page.get_by_label("Key name").fill("notebook")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("The new key").input_value()  # the htmx answer, waited for
    me = _whoami(console, secret)
    assert me.status_code == 200 and me.json()["principal_id"] == console.ids["ml_engineer"]
    page.get_by_role("button", name="Revoke key notebook").click()
    page.wait_for_url("**/admin#keys")
    row = page.get_by_role("row").filter(has_text="notebook")
    expect(row).to_contain_text("revoked")
    assert _whoami(console, secret).status_code == 401
    assert watched.problems == []
    watched.context.close()


def test_resume_form_follows_the_rule(console, browser, suspended) -> None:  # type: ignore[no-untyped-def]
    """`risk` v1 was trained by the trainer (four eyes: not theirs to resume); the auditor
    reads monitoring but resumes nothing; the project admin may, and does."""
    name = f"risk v1 ({console.name})"
    for who in ("ml_engineer", "auditor"):
        watched = sign_in(browser, console, who)
        page = watched.page
        page.goto("/monitoring")
        section = page.get_by_role("region", name=f"{name} SUSPENDED")
        expect(section.get_by_text("model_version.resume")).to_be_visible()
        assert section.get_by_role("button", name="Resume risk v1").count() == 0, who
        assert section.get_by_label("Reason for resuming").count() == 0, who
        watched.context.close()

    watched = sign_in(browser, console, "admin")
    page = watched.page
    page.goto("/monitoring")
    section = page.get_by_role("region", name=f"{name} SUSPENDED")
    section.get_by_label("Reason for resuming").fill("the outcome feed was replayed twice")
    with page.expect_navigation():  # the answer is /monitoring again: wait for the new page
        section.get_by_role("button", name="Resume risk v1").click()
    expect(page.get_by_role("region", name=f"{name} serving")).to_be_visible()
    assert page.get_by_role("region", name=f"{name} SUSPENDED").count() == 0
    assert watched.problems == []
    watched.context.close()
