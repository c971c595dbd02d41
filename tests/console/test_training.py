"""Training page: an ML engineer submits a tiny DP job through the form (against a real
`privet serve` with its worker and a tiny pinned BERT), watches its progress polled by htmx
and the loss and ε curves appear when it ends; cancels a second job."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from privet.reports import charts
from tests.console.conftest import TINY, TRAINED, Console, axe_violations, open_details, sign_in
from tests.datasets.conftest import declarations, make_rows, to_csv, upload


@pytest.fixture
def trainable(console: Console) -> Console:
    """The test's project holds a dataset of 80 rows with ε 8 to spend."""
    decl = declarations(name="tickets", privacy_budget={"epsilon_total": 8.0, "delta": 1e-5})
    with console.server.client() as http:
        made = upload(http, None, console.ids["project"], to_csv(make_rows(80)), decl=decl)
    assert made.status_code == 201, made.text
    return console


def _submit(page: Page) -> None:
    page.get_by_label("Base model").fill(TINY)
    page.get_by_label("Target epsilon").fill("3")
    page.get_by_label("Epochs").fill("2")
    page.get_by_label(re.compile("^Batch size")).fill("16")
    page.get_by_label("Physical batch size").fill("16")
    page.get_by_label("Max length").fill("16")
    page.get_by_label("Learning rate").fill("0.01")
    page.get_by_label("Strategy").fill("full")
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url(re.compile(r"/training/prj_[^/]+/job_[^/]+$"))


def test_engineer_submits_and_watches_the_curves(trainable, browser, shots) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, trainable, "ml_engineer")
    page = watched.page
    page.get_by_role("link", name="Training").click()
    page.wait_for_url("**/training")
    assert page.get_by_label("Dataset version").input_value()  # the uploaded version
    assert axe_violations(page) == []
    _submit(page)

    status = page.get_by_role("status")
    expect(status).to_contain_text("State:")
    loss = page.get_by_role("img", name="Training loss per step")
    expect(loss).to_be_visible(timeout=TRAINED)  # drawn by a poll once the job ended
    expect(status).to_contain_text("succeeded")
    assert page.get_by_role("img", name="ε per step").is_visible()
    assert loss.locator("polyline").count() == 1
    assert page.get_by_role("button", name="Cancel job").count() == 0
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "training.png"), full_page=True)
    assert watched.problems == []
    watched.context.close()


def test_engineer_cancels_a_job(trainable, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, trainable, "ml_engineer")
    page = watched.page
    page.goto("/training")
    open_details(page.get_by_text(f"Submit a training job in {trainable.name}"))
    _submit(page)
    page.get_by_role("button", name="Cancel job").click()
    expect(page.get_by_role("status")).to_contain_text("cancelled", timeout=TRAINED)
    watched.context.close()


def test_line_chart_escapes_its_text_and_draws_the_points() -> None:
    svg = charts.line_chart("<b>loss</b>", [(1.0, 0.7), (2.0, 0.5)], x_label="<i>step</i>")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "&lt;i&gt;" in svg
    assert svg.count("<polyline") == 1 and "no data" in charts.line_chart("t", [])
