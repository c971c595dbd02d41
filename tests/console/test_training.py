"""Training page: an ML engineer submits a tiny DP job through the form (against a real
`privet serve` with its worker and a tiny pinned BERT), watches its progress polled by htmx
and the loss and ε curves appear when it ends; cancels a second job."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from privet.reports import charts
from tests.console.conftest import Console, _seed, axe_violations, sign_in
from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.e2e.conftest import start_server, stop_server, tiny_catalog_file

TINY = "tiny-console"
TRAINED = 180_000  # ms: a tiny model trains in seconds; a loaded 2-core machine is slower


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """This module's server runs its worker, offered a tiny pinned BERT; `loans` holds a
    dataset of 80 rows with ε 8 to spend."""
    catalog = tiny_catalog_file(tmp_path_factory.mktemp("tiny"), TINY)
    server = start_server(
        tmp_path_factory.mktemp("console-training") / "home",
        env={
            "PRIVET_JOBS_EXTRA_CATALOG": str(catalog),
            "PRIVET_JOBS_HEARTBEAT_INTERVAL_S": "0.5",
            "PRIVET_JOBS_POLL_INTERVAL_S": "0.3",
            "PRIVET_LEDGER_POLL_INTERVAL_S": "0.2",
        },
    )
    try:
        seeded = _seed(server)
        decl = declarations(name="tickets", privacy_budget={"epsilon_total": 8.0, "delta": 1e-5})
        with server.client() as http:
            made = upload(http, None, seeded.ids["project"], to_csv(make_rows(80)), decl=decl)
        assert made.status_code == 201, made.text
        yield seeded
    finally:
        stop_server(server)


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


def test_engineer_submits_and_watches_the_curves(console, browser, shots) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "ml_engineer")
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


def test_engineer_cancels_a_job(console, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "ml_engineer")
    page = watched.page
    page.goto("/training")
    page.get_by_text("Submit a training job in loans").click()
    _submit(page)
    page.get_by_role("button", name="Cancel job").click()
    expect(page.get_by_role("status")).to_contain_text("cancelled", timeout=TRAINED)
    watched.context.close()


def test_line_chart_escapes_its_text_and_draws_the_points() -> None:
    svg = charts.line_chart("<b>loss</b>", [(1.0, 0.7), (2.0, 0.5)], x_label="<i>step</i>")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "&lt;i&gt;" in svg
    assert svg.count("<polyline") == 1 and "no data" in charts.line_chart("t", [])
