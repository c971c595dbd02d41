"""Monitoring page: an approver sees the `risk` version (approved, then suspended by the
live-quality judge when its accuracy fell below the floor) with its accuracy and
calibration charts, the alert that suspended it, and resumes it with a reason; a user
with no role in the project sees no version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from tests.console.conftest import Console, axe_violations, sign_in


@dataclass
class _Judge:
    """What `judge_quality` needs of a monitor: its settings (auto-suspension on)."""

    config: object
    metrics: object


@pytest.fixture
def suspended(console: Console) -> str:
    """`risk` v1 approved through the API; twenty outcomes recorded in each of three hourly
    windows, the last one 40 % right; the judge suspends it (auto_suspend on)."""
    from prometheus_client import CollectorRegistry

    from privet.db import session_scope
    from privet.inference.tables import Prediction
    from privet.kit.ids import utcnow
    from privet.models.tables import ModelVersion
    from privet.monitoring.metrics import MonitoringMetrics
    from privet.monitoring.quality import judge_quality
    from privet.monitoring.settings import MonitoringSettings
    from privet.monitoring.stats import window_start
    from privet.monitoring.tables import PredictionOutcome

    version_id = console.ids["version:risk"]
    with console.server.client(console.keys["approver"]) as http:
        project = console.ids["project"]
        approved = http.post(f"/v1/projects/{project}/model-versions/{version_id}:approve")
        assert approved.status_code == 200, approved.text
    runtime = console.runtime
    cfg = MonitoringSettings(auto_suspend=True)
    now = utcnow()
    with session_scope(runtime.engine) as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None
        for hour, right in ((2, 18), (1, 16), (0, 8)):
            at = window_start(now - timedelta(hours=hour), cfg.window_s) + timedelta(minutes=1)
            for n in range(20):
                pid = f"prd_mon{hour}_{n}_{console.tag()}"
                label, truth = "yes", ("yes" if n < right else "no")
                session.add(
                    Prediction(
                        id=pid,
                        project_id=version.project_id,
                        model_id=version.model_id,
                        model_version_id=version_id,
                        version_number=1,
                        caller=console.ids["ml_engineer"],
                        purpose="credit_scoring",
                        input_digest="hmac-sha256:" + "1" * 64,
                        label=label,
                        score_ppm=700_000 + 10_000 * n,
                        created_at=at,
                    )
                )
                session.add(
                    PredictionOutcome(
                        prediction_id=pid,
                        project_id=version.project_id,
                        model_version_id=version_id,
                        label=truth,
                        predicted_label=label,
                        score_ppm=700_000 + 10_000 * n,
                        predicted_at=at,
                        recorded_by=console.ids["ml_engineer"],
                        recorded_at=at,
                    )
                )
        session.flush()
        judge = _Judge(cfg, MonitoringMetrics(CollectorRegistry()))
        last = window_start(now, cfg.window_s)
        judge_quality(session, monitor=judge, version=version, window=last)  # type: ignore[arg-type]
    return version_id


def test_approver_sees_charts_and_alert_and_resumes(  # type: ignore[no-untyped-def]
    console, browser, shots, suspended
) -> None:
    watched = sign_in(browser, console, "approver")
    page = watched.page
    page.get_by_role("link", name="Monitoring").click()
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
    section.get_by_role("button", name="Resume risk v1").click()
    page.wait_for_url("**/monitoring")
    assert page.get_by_role("region", name=f"risk v1 ({console.name}) serving").is_visible()
    assert watched.problems == []
    watched.context.close()


def test_no_role_sees_no_version(console, browser, suspended) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "none")
    page = watched.page
    page.goto("/monitoring")
    assert page.get_by_text("No model version in service that you may monitor.").is_visible()
    watched.context.close()
