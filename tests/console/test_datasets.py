"""Datasets page: a data steward uploads a small CSV made here (declarations in the form,
progress bar fed by htmx) and sees its version with row and label counts, split and PII
scan; erases a subject; a description a user typed renders inert and a hostile name is
refused with the rule, shown as text."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from tests.console.conftest import XSS, Console, axe_violations, sign_in


@pytest.fixture
def steward(console: Console) -> str:
    """A data steward of the test's project (the seed has none), with a key."""
    from privet.db import session_scope
    from tests.conftest import mint_key, seed_principal

    runtime = console.runtime
    with session_scope(runtime.engine) as session:
        person = seed_principal(session, "data_steward", console.ids["project"], "Sam Steward")
        console.keys["data_steward"] = str(mint_key(session, runtime, person.id, "sam").key)
    return "data_steward"


def _csv(folder: Path) -> Path:
    path = folder / "tickets.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer", "text", "label"])
        for i in range(40):
            out.writerow(
                [f"c{i % 10}", f"parcel {i} arrived late again", "late" if i % 2 else "ok"]
            )
    return path


def test_steward_uploads_and_sees_the_version(console, browser, shots, steward, tmp_path) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, steward)
    page = watched.page
    page.on("dialog", lambda d: (_ for _ in ()).throw(AssertionError(d.message)))
    page.get_by_role("link", name="Datasets").click()
    page.wait_for_url("**/datasets")
    page.get_by_text(f"Upload a dataset to {console.name}").click()
    page.get_by_label("Name (lower case").fill("tickets")
    page.get_by_label("Description").fill(XSS)
    page.get_by_label("Purposes").fill("credit_scoring")
    page.get_by_label("Legal basis").select_option("contract")
    page.get_by_label("Contains personal data").check()
    page.get_by_label("Subject-id column").fill("customer")
    page.get_by_label("Privacy budget").fill("6")
    page.get_by_label("File (CSV").set_input_files(str(_csv(tmp_path)))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url("**/datasets?uploaded=*")

    versions = page.get_by_role("table", name="Versions of tickets")
    assert versions.get_by_role("cell", name="40", exact=True).is_visible(), page.inner_text("main")
    assert versions.get_by_role("cell", name="late: 20, ok: 20").is_visible()
    assert "nothing spent yet, ε 6.0 declared" in page.inner_text("main")
    assert page.get_by_text(XSS, exact=True).is_visible()  # the description, as text
    assert page.evaluate("window.__pwned") is None
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "datasets.png"), full_page=True)

    page.get_by_label("Subject ids to erase from tickets").fill("c3\nc4")
    page.get_by_role("button", name="Erase subjects from tickets").click()
    page.wait_for_url("**/datasets#ds-*")
    assert versions.get_by_role("cell", name="32", exact=True).is_visible()  # v2: 8 rows fewer
    assert [p for p in watched.problems if "Content Security Policy" not in p] == []
    watched.context.close()


def test_a_refused_upload_says_which_rule_and_why(console, browser, steward, tmp_path) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, steward)
    page = watched.page
    page.on("dialog", lambda d: (_ for _ in ()).throw(AssertionError(d.message)))
    page.goto("/datasets")
    page.get_by_text(f"Upload a dataset to {console.name}").click()
    page.get_by_label("Name (lower case").fill(XSS)
    page.get_by_label("Purposes").fill(XSS)
    page.get_by_label("File (CSV").set_input_files(str(_csv(tmp_path)))
    page.get_by_role("button", name="Upload", exact=True).click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    text = alert.inner_text()
    assert "invalid declarations" in text and "name" in text and "purposes" in text, text
    assert page.evaluate("window.__pwned") is None
    # the htmx progress events reached the bar (the whole body was sent)
    assert page.get_by_label("Upload progress").evaluate("e => e.value") == 100
    page.reload()
    assert (
        page.get_by_role("heading", name=re.compile(r"^bad ")).count() == 0
    )  # nothing half-written
    watched.context.close()
