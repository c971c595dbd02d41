"""Decisions page: a reviewer (approver) sees the referred predictions with the rule that
kept each one from being final and why, overturns one with a reason (shown inert when it
is a stored-XSS payload) and finds the review in the ledger; contests are recorded; a
trainer cannot review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.console.conftest import XSS, Console, axe_violations, csrf_of, session_http, sign_in

#: the referred predictions' input texts (the second one a stored-XSS payload)
CASE_TEXTS = ("applicant asks for 20k, income 1.2k a month", "applicant says " + XSS)


@pytest.fixture
def referred(console: Console) -> list[str]:
    """Two predictions of the `risk` version (made by the trainer's application), referred
    by the credit-scoring rules, written as the predict flow writes them."""
    from privet.db import session_scope
    from privet.inference import cases
    from privet.inference.tables import Prediction
    from privet.kit.ids import utcnow
    from privet.monitoring.tables import PENDING_REVIEW, REFER, PredictionDecision

    runtime = console.runtime
    now = utcnow()
    made = []
    with session_scope(runtime.engine) as session:
        for n, (label, ppm, status, rule) in enumerate(
            (
                ("yes", 600_000, REFER, "decision.refer.credit-scoring-uncertain"),
                ("no", 900_000, PENDING_REVIEW, "decision.review.credit-scoring-adverse"),
            )
        ):
            pid = f"prd_console{n}_{console.tag()}"
            at = now - timedelta(minutes=10 - n)
            session.add(
                Prediction(
                    id=pid,
                    project_id=console.ids["project"],
                    model_id="mdl_x",
                    model_version_id=console.ids["version:risk"],
                    version_number=1,
                    caller=console.ids["ml_engineer"],
                    purpose="credit_scoring",
                    input_digest="hmac-sha256:" + "0" * 64,
                    label=label,
                    score_ppm=ppm,
                    created_at=at,
                )
            )
            session.add(
                PredictionDecision(
                    prediction_id=pid,
                    project_id=console.ids["project"],
                    model_version_id=console.ids["version:risk"],
                    status=status,
                    rules=[rule],
                    label=label,
                    score_ppm=ppm,
                    purpose="credit_scoring",
                    created_at=at,
                )
            )
            made.append(pid)
        session.flush()
        for n, pid in enumerate(made):  # sealed as the monitor seals a held prediction's text
            cases.seal_cases(
                session,
                provider=runtime.key_provider,
                project_id=console.ids["project"],
                cases=[(pid, CASE_TEXTS[n])],
                created_at=now - timedelta(minutes=10 - n),
            )
    return made


def test_reviewer_overturns_with_a_reason_and_it_is_in_the_ledger(  # type: ignore[no-untyped-def]
    console, browser, shots, referred
) -> None:
    watched = sign_in(browser, console, "approver")
    page = watched.page
    page.get_by_role("link", name="Decisions").click()
    page.wait_for_url("**/decisions")  # a plain link: wait for its page
    first, second = referred
    assert page.get_by_role("heading", name=f"{first}: yes (0.6000) refer").is_visible()
    assert page.get_by_text(
        "an uncertain credit-scoring decision is referred to a human"
    ).is_visible()
    assert page.get_by_text("decision.review.credit-scoring-adverse").is_visible()
    # The reviewer reads each case's text (the XSS payload stays text).
    shown = page.locator("blockquote.case").all_inner_texts()
    assert shown == list(CASE_TEXTS)
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "decisions.png"), full_page=True)

    card = page.get_by_role("article").filter(has=page.get_by_role("heading", name=first))
    card.get_by_label("Decision").select_option("overturned")
    card.get_by_label("Corrected label (when overturning)").select_option("no")
    card.get_by_label("Reason", exact=True).fill("income verified too low " + XSS)
    card.get_by_role("button", name=f"Record review of {first}").click()
    page.wait_for_url("**/decisions?status=closed")
    decided = page.get_by_role("article").filter(has=page.get_by_role("heading", name=first))
    assert "overturned to no" in decided.inner_text()
    # The review closed the case: its text is crypto-shredded.
    assert "The text was crypto-shredded (reviewed)." in decided.inner_text()
    assert CASE_TEXTS[0] not in page.content()
    assert decided.locator("td.reason").inner_text() == "income verified too low " + XSS
    assert page.evaluate("window.__pwned") is None  # the payload stayed text

    # A contest of the decided prediction is recorded beside the review.
    decided.get_by_label("Contest reason").fill("the applicant disputes it")
    with page.expect_navigation():  # back to the same ?status=closed: wait for the new page
        decided.get_by_role("button", name=f"Contest {first}").click()
    expect(page.get_by_role("cell", name="the applicant disputes it")).to_be_visible()

    # Deciding it again is for another person (policies/human_review.cedar).
    # Its form is not offered again, and a forged one is refused (issue 20).
    again = page.get_by_role("article").filter(has=page.get_by_role("heading", name=first))
    assert again.get_by_role("button", name=f"Record review of {first}").count() == 0
    assert again.get_by_role("button", name=f"Contest {first}").is_visible()
    with session_http(console, watched) as http:
        forged = http.post(
            f"/decisions/{console.ids['project']}/{first}/review",
            data={"csrf": csrf_of(page), "kind": "review", "decision": "confirmed", "reason": "x"},
            headers={"origin": console.url},
        )
    assert forged.status_code == 403, forged.text
    assert "review.redecided-by-another-person" in forged.text

    page.goto("/decisions")
    assert page.get_by_role("heading", name=f"{second}: no (0.9000) pending_review").is_visible()
    assert page.get_by_role("heading", name=first).count() == 0  # it left the queue
    assert watched.problems == []
    watched.context.close()

    auditor = sign_in(browser, console, "auditor")  # the review is in the ledger
    auditor.page.goto("/decisions")  # an auditor reads the queue, not the case's text
    waiting = auditor.page.get_by_role("article").filter(
        has=auditor.page.get_by_role("heading", name=second)
    )
    assert "Only a person who may decide this review reads its text." in waiting.inner_text()
    assert waiting.get_by_role("button").count() == 0  # nor the forms to decide or contest
    assert auditor.page.locator("blockquote.case").count() == 0
    auditor.page.goto(f"/audit?type=prediction.case_shredded&project={console.ids['project']}")
    shredded = auditor.page.locator("tbody tr")
    assert shredded.count() == 1 and f"prediction {first}" in shredded.first.inner_text()
    auditor.page.goto(f"/audit?type=prediction.reviewed&project={console.ids['project']}")
    rows = auditor.page.locator("tbody tr")
    assert rows.count() == 1, auditor.page.inner_text("main")[:2000]
    assert f"prediction {first}" in rows.first.inner_text()
    assert console.ids["approver"] in rows.first.inner_text()
    auditor.context.close()


def test_trainer_cannot_review(console, browser, referred) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "ml_engineer")
    page = watched.page
    page.goto("/decisions")
    assert page.get_by_text("No project whose review queue you may read.").is_visible()
    watched.context.close()
