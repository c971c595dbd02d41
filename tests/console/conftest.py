"""One real `privet serve` and one Chromium (Debian's, never downloaded, driven by
Playwright) per test process, shared by every console test: starting them is most of what
a console test would otherwise cost. Each test gets its own project, people and keys on
that server (`console`), so tests stay independent of one another and of their order.

The server runs its local worker, offered a tiny pinned BERT (`TINY`), so the training
page and the quick start's scenario can train for real.

Screenshots go to a temporary folder, or to the folder named by PRIVET_CONSOLE_SCREENSHOTS
(`PRIVET_CONSOLE_SCREENSHOTS=docs/console .venv/bin/python -m pytest tests/console` refreshes
the ones in docs/console).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, sync_playwright

from tests.console.support import register_version
from tests.e2e.conftest import Server, start_server, stop_server, tiny_catalog_file

HERE = Path(__file__).parent
AXE = HERE / "axe-4.11.0.min.js"
CHROMIUM = "/usr/bin/chromium"
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
TINY = "tiny-console"  # the base model the shared server's catalog offers
TRAINED = 180_000  # ms: a tiny model trains in seconds; a loaded 2-core machine is slower

_numbers = itertools.count(1)


@dataclass
class Served:
    """The test process's server and a runtime on its home (for seeding through services)."""

    server: Server
    runtime: Any


@dataclass
class Console:
    server: Server
    keys: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)
    name: str = "loans"  # the test's own project (names are unique on a server)
    runtime: Any = None

    @property
    def url(self) -> str:
        return self.server.url

    def tag(self) -> str:
        """A suffix unique on the shared server, for ids a test writes itself."""
        return self.name.replace("-", "_")


def _seed(served: Served) -> Console:
    """A project of its own (`loans-N`); an auditor (platform-wide), an approver, a trainer
    and an admin of the project, someone with no role; two candidate versions (one the
    approver's own)."""
    from privet.db import session_scope
    from tests.conftest import mint_key, seed_principal

    server, runtime = served.server, served.runtime
    name = f"loans-{next(_numbers)}"
    with server.client() as http:
        made = http.post("/v1/projects", json={"name": name})
        assert made.status_code == 201, made.text
        project = made.json()["id"]
    keys: dict[str, str] = {"root": server.admin_key}
    ids: dict[str, str] = {"project": project}
    with session_scope(runtime.engine) as session:
        for role, bound, person_name in (
            ("auditor", None, "Ada Auditor"),
            ("approver", project, "Alex Approver"),
            ("ml_engineer", project, "Tom Trainer"),
            ("admin", project, "Pat Admin"),
            (None, None, "Nobody"),
        ):
            person = seed_principal(session, role, bound, person_name)
            keys[role or "none"] = str(
                mint_key(session, runtime, person.id, f"{person_name} key").key
            )
            ids[role or "none"] = person.id
    for model_name, author in (("own-model", "approver"), ("risk", "ml_engineer")):
        version = register_version(
            runtime,
            project=project,
            model_name=model_name,
            job_id=f"job_{model_name}_{name}",
            submitted_by=ids[author],
        )
        ids[f"version:{model_name}"] = version.id
    integrated(runtime)
    return Console(server, keys, ids, name, runtime)


def integrated(runtime: Any) -> None:
    """Wait until the server's sequencer (a pass every 0.2 s) has integrated every event
    written so far, such as a seed's (written by this process, outside the server): pages
    list integrated events only. Only the server signs checkpoints, with its own key."""
    from sqlalchemy import text

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with runtime.engine.connect() as conn:  # a fresh snapshot each time
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM ledger_entries e WHERE NOT EXISTS "
                    "(SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id)"
                )
            ).scalar_one()
        if not waiting:
            return
        time.sleep(0.1)
    raise AssertionError(f"{waiting} ledger entries still not integrated after 60 s")


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The test process's `privet serve`, with its worker and the tiny model to train."""
    from privet.config import Settings
    from privet.runtime import build_runtime

    catalog = tiny_catalog_file(tmp_path_factory.mktemp("tiny"), TINY)
    server = start_server(
        tmp_path_factory.mktemp("console") / "home",
        env={
            "PRIVET_JOBS_EXTRA_CATALOG": str(catalog),
            "PRIVET_JOBS_HEARTBEAT_INTERVAL_S": "0.5",
            "PRIVET_JOBS_POLL_INTERVAL_S": "0.3",
            "PRIVET_LEDGER_POLL_INTERVAL_S": "0.2",
        },
    )
    try:
        yield Served(server, build_runtime(Settings(home=server.home)))
    finally:
        stop_server(server)


@pytest.fixture
def console(served: Served) -> Console:
    """This test's own project and people on the shared server."""
    return _seed(served)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def _contexts_end_with_the_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """The browser is shared by the whole process: whatever contexts a test opened (and
    did not close, e.g. when it failed) are closed after it."""
    shared = request.getfixturevalue("browser") if "browser" in request.fixturenames else None
    yield
    for context in shared.contexts if shared else ():
        context.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("PRIVET_CONSOLE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screens")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watched:
    """A page and the CSP violations and script errors it reported."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page: Page = context.new_page()
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(m.text)
                if m.type == "error" or "Content Security Policy" in m.text
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))


def sign_in(browser: Browser, console: Console, who: str) -> Watched:
    """A fresh browser context signed in with ``who``'s API key through the form."""
    watched = Watched(browser.new_context(base_url=console.url))
    page = watched.page
    page.goto("/sign-in")
    page.get_by_label("API key").fill(console.keys[who])
    with page.expect_navigation():  # a click does not wait for the page it leads to
        page.get_by_role("button", name="Sign in").click()
    assert re.fullmatch(r"http://[^/]+/", page.url), (page.url, page.content()[-1500:])

    return watched


def open_details(summary: Locator) -> None:
    """Open the <details> this is the summary of (clicking an open one would close it)."""
    if summary.locator("xpath=..").get_attribute("open") is None:
        summary.click()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # through the debugger protocol: the page's CSP holds
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def session_http(console: Console, watched: Watched) -> httpx.Client:
    """An HTTP client carrying the browser context's cookies (for forged requests)."""
    cookies = {c["name"]: c["value"] for c in watched.context.cookies()}
    return httpx.Client(base_url=console.url, cookies=cookies, follow_redirects=False)


def csrf_of(page: Page) -> str:
    return str(page.locator("form.signout input[name=csrf]").get_attribute("value"))


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
