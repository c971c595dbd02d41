"""README's quick start done in the console only, against the shared `privet serve`:
the admin (the key `privet serve` printed) creates the project, invites the approver (who
accepts on the sign-in page and is signed in with their own key), adds the scoring
application as a service account and mints its key; uploads the loan notes the guide's
own script generates, with their declarations; submits the DP training job with the
guide's settings (the tiny model in place of MiniLM, as the guide's own test does) and
watches it finish; is refused approving their own model (four-eyes); the approver approves
it; the application predicts; the admin downloads its lineage report as a PDF and verifies
the log.

The scoring application signs in with the key minted for it and predicts on the Predict
page (the API's own handler), as the guide's step 6 does with the CLI."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import (
    TINY,
    TRAINED,
    Console,
    Watched,
    axe_violations,
    open_details,
    sign_in,
)
from tests.e2e.test_first_hour import quick_start_blocks


def _loans_csv(folder: Path) -> Path:
    """The guide's step 3, run as written: 800 synthetic loan notes in loans.csv."""
    script = next(b for b in quick_start_blocks() if "loans.csv" in b and "<<'PY'" in b)
    subprocess.run(["bash", "-c", script], cwd=folder, check=True, timeout=60)
    return folder / "loans.csv"


def _section(page: Page, heading: str) -> Locator:
    return page.get_by_role("region", name=heading, exact=True)


def _team(page: Page, project: str) -> tuple[str, str]:
    """Step 2: the project, the approver's invitation token, the application's key."""
    page.goto("/admin")
    page.get_by_label("Project name").fill(project)
    page.get_by_label("Project description").fill("Loan application triage")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/admin#p-*")
    members = _section(page, f"Members of {project}")
    members.get_by_label("Name of the person to invite").fill("risk-officer")
    members.get_by_label("Their role").select_option("approver")
    members.get_by_role("button", name=f"Invite to {project}").click()
    token = page.get_by_label("The invitation token").input_value()
    assert token.startswith("pvi_"), token

    members = _section(page, f"Members of {project}")
    members.get_by_label("or a new service account named").fill("scoring-app")
    members.get_by_label("Role", exact=True).select_option("predictor")
    members.get_by_role("button", name=f"Grant role in {project}").click()
    page.wait_for_url("**/admin#p-*")
    members = _section(page, f"Members of {project}")
    members.get_by_label("Service account", exact=True).select_option(label="scoring-app")
    members.get_by_label("Name of its key").fill("scoring-app")
    members.get_by_role("button", name=f"Create a key for a service account of {project}").click()
    app_key = page.get_by_label("The new key").input_value()
    assert app_key.startswith("pvt_"), app_key
    return token, app_key


def _upload(page: Page, project: str, csv: Path) -> None:
    """Step 4, with the guide's declarations."""
    page.goto("/datasets")
    section = _section(page, f"Datasets of {project}")
    open_details(section.get_by_text(f"Upload a dataset to {project}"))
    section.get_by_label("Name (lower case").fill("loans")
    section.get_by_label("Purposes").fill("credit_scoring")
    section.get_by_label("Legal basis").select_option("contract")
    section.get_by_label("Data categories").fill("financial")
    section.get_by_label("Contains personal data").check()
    section.get_by_label("Subject-id column").fill("customer")
    section.get_by_label("Retention in days").fill("365")
    section.get_by_label("Privacy budget").fill("8")
    section.get_by_label("File (CSV").set_input_files(str(csv))
    section.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url("**/datasets?uploaded=*")
    versions = _section(page, f"Datasets of {project}").get_by_role(
        "table", name="Versions of loans"
    )
    assert versions.get_by_role("cell", name="800", exact=True).is_visible()


def _train(page: Page, project: str) -> None:
    """Step 5 with the guide's settings; the job page follows it to the end."""
    page.goto("/training")
    section = _section(page, f"Training in {project}")
    open_details(section.get_by_text(f"Submit a training job in {project}"))
    assert "loans v1 (800 rows)" in section.get_by_label("Dataset version").inner_text()
    for label, value in (
        ("Base model", TINY),
        ("Model name", "loan-triage"),
        ("Target epsilon", "3"),
        ("Strategy", "head"),
        ("Epochs", "2"),
        (re.compile("^Batch size"), "64"),
        ("Physical batch size", "64"),
        ("Max length", "32"),
        ("Learning rate", "0.01"),
    ):
        section.get_by_label(label).fill(value)
    section.get_by_role("button", name="Submit job").click()
    page.wait_for_url(re.compile(r"/training/prj_[^/]+/job_[^/]+$"))
    expect(page.get_by_role("img", name="Training loss per step")).to_be_visible(timeout=TRAINED)
    expect(page.get_by_role("status")).to_contain_text("succeeded")


def _accept(browser, console: Console, token: str) -> Watched:  # type: ignore[no-untyped-def]
    """The approver accepts the invitation on the sign-in page: signed in, key shown once."""
    watched = Watched(browser.new_context(base_url=console.url))
    page = watched.page
    page.goto("/sign-in")
    page.get_by_role("link", name="Accept an invitation").click()
    page.get_by_label("Invitation token").fill(token)
    page.get_by_label("Name of your first key").fill("risk-laptop")
    page.get_by_role("button", name="Accept the invitation").click()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    assert page.get_by_label("The new key").input_value().startswith("pvt_")
    assert axe_violations(page) == []
    page.get_by_role("link", name="Continue to the console").click()
    page.wait_for_url(re.compile(r"http://[^/]+/$"))  # the Welcome page names them too
    expect(page.get_by_text("risk-officer").first).to_be_visible()
    return watched


def _predict(browser, console: Console, app_key: str, project: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    """The scoring application, signed in with the key minted for it, classifies the
    guide's two texts with the approved model."""
    app = Watched(browser.new_context(base_url=console.url))
    page = app.page
    page.goto("/sign-in")
    page.get_by_label("API key").fill(app_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Predict").click()
    page.get_by_label("Project").select_option(label=project)
    page.get_by_label("Model name").fill("loan-triage")
    page.get_by_label("Purpose").fill("credit_scoring")
    texts = ["applicant has missed payments and high debt", "stable salary, savings, paid on time"]
    page.get_by_label("Texts to classify").fill("\n".join(texts))
    page.get_by_role("button", name="Predict", exact=True).click()
    table = page.get_by_role("table", name="Predictions of loan-triage v1")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    for row, text in zip(rows.all(), texts, strict=True):
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == text and cells[1] in ("approve", "refer"), cells
        assert cells[4].startswith("prd_"), cells
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "predict.png"), full_page=True)
    assert app.problems == []
    app.context.close()


def test_the_quick_start_in_the_console(console, browser, shots, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = f"retail-credit-{console.tag().rsplit('_', 1)[-1]}"
    admin = sign_in(browser, console, "root")
    page = admin.page
    token, app_key = _team(page, project)
    assert axe_violations(page) == []
    _upload(page, project, _loans_csv(tmp_path))
    _train(page, project)
    page.screenshot(path=str(shots / "quickstart-training.png"), full_page=True)

    page.goto("/models")
    trained = _section(page, f"loan-triage v1 ({project}, candidate)")
    assert trained.get_by_role("button", name="Retire loan-triage v1").is_visible()
    # their own model: the four-eyes rule offers them no approval (issue 20)
    assert trained.get_by_role("button", name="Approve loan-triage v1").count() == 0

    approver = _accept(browser, console, token)
    approver.page.get_by_role("link", name="Models").click()
    approver.page.get_by_role("button", name="Approve loan-triage v1").click()
    heading = approver.page.get_by_role("heading", name=f"loan-triage v1 ({project}, approved)")
    expect(heading).to_be_visible()
    assert approver.problems == []
    approver.context.close()

    _predict(browser, console, app_key, project, shots)  # step 6: the application predicts

    page.goto("/models")  # step 7: the lineage report, and the log verified
    version = (
        _section(page, f"loan-triage v1 ({project}, approved)")
        .get_by_role("row", name="Version id")
        .inner_text()
        .split()[-1]
    )
    page.goto("/reports")
    lineage = _section(page, "model-lineage")
    lineage.get_by_label("Scope").select_option(label=project)
    lineage.get_by_label("Model version").fill(version)
    lineage.get_by_role("button", name="Preview the model-lineage report").click()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download PDF").click()
    assert info.value.path().read_bytes().startswith(b"%PDF")
    page.goto("/audit")
    page.get_by_role("button", name="Verify the live log").click()
    expect(page.get_by_role("status")).to_contain_text("Verified", timeout=TRAINED)
    assert [p for p in admin.problems if "status of 403" not in p] == []
    admin.context.close()
