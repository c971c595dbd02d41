"""Data-subject requests page: the DPO (a platform-wide data steward) files an erasure for
a subject whose rows trained the `risk` model and sees the affected model on the
request's page, with its deadline (answered late: received forty days ago) marked in the
log; the answer downloads; bad input is refused with the rule; a stored-XSS payload in
the free-text fields stays inert; a trainer is refused."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.console.conftest import XSS, Console, axe_violations, sign_in
from tests.datasets.conftest import make_rows, to_csv, upload


@pytest.fixture
def dpo(console: Console) -> Console:
    """A platform-wide data steward (the DPO), and a dataset holding the subject's rows
    (`ids["subject"]`, unique on the shared server: an erasure reaches every project) that
    the `risk` version was trained on."""
    from privet.datasets.usage import record_usage
    from privet.db import session_scope
    from tests.conftest import mint_key, seed_principal

    rows = [{**row, "customer": f"{console.name}-{row['customer']}"} for row in make_rows(20)]
    console.ids["subject"] = rows[1]["customer"]
    with console.server.client() as http:
        made = upload(http, None, console.ids["project"], to_csv(rows))
        assert made.status_code == 201, made.text
        dataset_version = made.json()["id"]
    runtime = console.runtime
    with session_scope(runtime.engine) as session:
        person = seed_principal(session, "data_steward", None, "Dana DPO")
        console.keys["dpo"] = str(mint_key(session, runtime, person.id, "DPO key").key)
        record_usage(
            session,
            dataset_version_id=dataset_version,
            used_by_kind="model_version",
            used_by_id=console.ids["version:risk"],
        )
    return console


def test_dpo_files_an_erasure_and_sees_the_affected_models(  # type: ignore[no-untyped-def]
    dpo, browser, shots, tmp_path
) -> None:
    from privet.kit.ids import utcnow

    watched = sign_in(browser, dpo, "dpo")
    page = watched.page
    page.get_by_role("link", name="Requests").click()
    page.wait_for_url("**/requests")  # a plain link: wait for its page
    assert page.get_by_role("heading", name="Data-subject requests", level=1).is_visible()
    page.get_by_label("Request type").select_option("erasure")
    page.get_by_label("Subject id (as the datasets record it)").fill(dpo.ids["subject"])
    page.get_by_label("Requester (sealed)").fill("agent " + XSS)
    received = (utcnow() - timedelta(days=40)).date().isoformat()
    page.get_by_label("Received on (default today)").fill(received)
    page.get_by_role("button", name="Log the request").click()
    page.wait_for_url("**/requests/dsr_*")

    assert page.get_by_role("heading", name="Affected models").is_visible()
    flagged = page.get_by_role("row").filter(has_text=dpo.ids["version:risk"])
    assert flagged.count() == 1 and dpo.ids["project"] in flagged.inner_text()
    assert "answered late" in page.get_by_role("row", name="Statutory deadline").inner_text()
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "request.png"), full_page=True)

    with page.expect_download() as info:
        page.get_by_role("link", name="Download the answer (JSON)").click()
    answer = json.loads(info.value.path().read_text())
    assert answer["report"]["kind"] == "dsr" and answer["ledger"]["events"]

    page.get_by_role("link", name="Back to the request log").click()
    page.wait_for_url("**/requests")
    row = page.get_by_role("row").filter(has_text="erasure")
    assert "answered late" in row.inner_text() and "1 model version(s) flagged" in row.inner_text()

    # A second request with the payload as its subject id: nothing of it runs.
    page.get_by_label("Subject id (as the datasets record it)").fill(XSS)
    page.get_by_label("Requester (sealed)").fill(XSS)
    page.get_by_role("button", name="Log the request").click()
    page.wait_for_url("**/requests/dsr_*")
    page.goto("/requests")
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "requests.png"), full_page=True)
    assert page.evaluate("window.__pwned") is None

    # Purposes belong to objections only: refused with the rule, nothing logged.
    page.get_by_label("Subject id (as the datasets record it)").fill("someone")
    page.get_by_label("Purposes objected to (objection only, comma-separated; empty: all)").fill(
        "marketing"
    )
    page.get_by_role("button", name="Log the request").click()  # answered at /requests again
    expect(page.get_by_role("heading", name="Invalid input")).to_be_visible()
    assert "purposes apply to objection requests only" in page.get_by_role("alert").inner_text()
    page.goto("/requests")
    assert page.locator("tbody tr").count() == 2
    assert [p for p in watched.problems if "status of 422" not in p] == []
    watched.context.close()


def test_trainer_is_refused(dpo, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, dpo, "ml_engineer")
    page = watched.page
    page.goto("/requests")
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    watched.context.close()
