"""One real `privet serve` per test module, seeded with the people the console scenarios
need, and one Chromium (Debian's, never downloaded) driven by Playwright.

Screenshots go to a temporary folder, or to the folder named by PRIVET_CONSOLE_SCREENSHOTS
(`PRIVET_CONSOLE_SCREENSHOTS=docs/console .venv/bin/python -m pytest tests/console` refreshes
the ones in docs/console).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.e2e.conftest import Server, start_server, stop_server

HERE = Path(__file__).parent
AXE = HERE / "axe-4.11.0.min.js"
CHROMIUM = "/usr/bin/chromium"
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'


@dataclass
class Console:
    server: Server
    keys: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


def _seed(server: Server) -> Console:
    """Project `loans`; an auditor (platform-wide), an approver, a trainer and an admin of
    the project, someone with no role; two candidate versions (one the approver's own)."""
    from privet.auth.identity import Identity
    from privet.authorization import principal_ref
    from privet.config import Settings
    from privet.db import session_scope
    from privet.models import service
    from privet.runtime import build_runtime
    from tests.conftest import mint_key, seed_principal

    with server.client() as http:
        project = http.post("/v1/projects", json={"name": "loans"}).json()["id"]
    runtime = build_runtime(Settings(home=server.home))
    keys: dict[str, str] = {"root": server.admin_key}
    ids: dict[str, str] = {"project": project}
    with session_scope(runtime.engine) as session:
        for role, bound, name in (
            ("auditor", None, "Ada Auditor"),
            ("approver", project, "Alex Approver"),
            ("ml_engineer", project, "Tom Trainer"),
            ("admin", project, "Pat Admin"),
            (None, None, "Nobody"),
        ):
            person = seed_principal(session, role, bound, name)
            keys[role or "none"] = str(mint_key(session, runtime, person.id, f"{name} key").key)
            ids[role or "none"] = person.id
    for model_name, author in (("own-model", "approver"), ("risk", "ml_engineer")):
        who = Identity(
            principal_id=ids[author], kind="user", name="", bindings=frozenset(), method="api_key"
        )
        with session_scope(runtime.engine) as session:
            version = service.register_version(
                session,
                runtime=runtime,
                reg=service.Registration(
                    project_id=project,
                    model_name=model_name,
                    job_id=f"job_{model_name}",
                    submitted_by=principal_ref(who),
                    base_model="tiny",
                    base_model_sha256="0" * 64,
                    label_names=["no", "yes"],
                    purposes=["credit_scoring"],
                    dataset_versions=[],
                    private=True,
                    privacy={"epsilon": 3.0, "delta": 1e-5},
                    metrics={"accuracy": 0.81, "macro_f1": 0.79},
                    training={"max_length": 64},
                    weights=b"not used by these tests",
                    policy_version=None,
                ),
            )
            ids[f"version:{model_name}"] = version.id
    with server.client(keys["auditor"]) as http:  # the server integrates the seed's events
        assert http.get("/v1/audit/export").status_code == 200
    return Console(server, keys, ids)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    server = start_server(tmp_path_factory.mktemp("console") / "home", args=("--no-worker",))
    try:
        yield _seed(server)
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


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
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert re.fullmatch(r"http://[^/]+/", page.url), (page.url, page.content()[-1500:])

    return watched


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
