"""OIDC sign-in in the browser (authorization code + PKCE), for real: a small OpenID
provider on its own HTTP server (tests/cli/oidc_provider.py: an authorization endpoint
that approves at once, a token endpoint that checks the S256 verifier and spends each
code, a JWKS with an RSA key), a real `privet serve` trusting it, Chromium driving both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.cli.oidc_provider import Provider, Running
from tests.console.conftest import Served
from tests.e2e.conftest import Server, start_server, stop_server

OIDC_BUTTON = "Sign in with your organisation's account (OIDC)"
CALLBACK = "**/sign-in/oidc/callback?*"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with Running(tmp_path_factory.mktemp("idp")) as provider:
        provider.roles = ["auditor"]
        yield provider


@pytest.fixture(scope="module")
def server(idp: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "PRIVET_OIDC_ISSUER": idp.issuer,
        "PRIVET_OIDC_AUDIENCE": idp.audience,
        "PRIVET_OIDC_JWKS": f"{idp.issuer}/jwks",
        "PRIVET_OIDC_CONSOLE_CLIENT_ID": idp.console_client_id,
    }
    running = start_server(tmp_path_factory.mktemp("oidc") / "home", env=env, args=("--no-worker",))
    try:
        yield running
    finally:
        stop_server(running)


def _start(browser: Browser, server: Server) -> Page:
    page = browser.new_context(base_url=server.url).new_page()
    page.goto("/sign-in")
    return page


def _refusal(page: Page) -> str:
    """The error the sign-in page shows after the callback."""
    page.wait_for_url(CALLBACK)
    page.wait_for_load_state()
    alert = page.get_by_role("alert")
    assert alert.count() == 1, (page.url, page.content()[-1500:])
    return alert.inner_text()


def _session_cookie(page: Page) -> str | None:
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    return cookies.get("privet_session")


def _edit(param: str, value: str, seen: list[str] | None = None) -> object:
    """The provider's redirect back with one parameter changed (what an attacker on the way
    would do); ``seen`` records the value issued."""

    def edit(query: dict[str, str]) -> dict[str, str]:
        if seen is not None:
            seen.append(query[param])
        return {**query, param: value}

    return edit


def test_sign_in_with_oidc(browser: Browser, server: Server, idp: Provider) -> None:
    page = _start(browser, server)
    page.get_by_role("link", name=OIDC_BUTTON).click()
    page.wait_for_url(re.compile(r"http://[^/]+/$"))
    assert page.get_by_text("Alice Example").first.is_visible()
    assert _session_cookie(page)
    authorize = [r for r in idp.requests if r.path == "/authorize"][-1].form
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["state"] and authorize["nonce"] and len(authorize["code_challenge"]) == 43
    exchange = [r for r in idp.requests if r.form.get("grant_type") == "authorization_code"][-1]
    assert len(exchange.form["code_verifier"]) >= 43
    # The same ledger event as an API-key sign-in, for the principal the API maps it to.
    with server.client() as http:
        me = _principal_of(server, idp)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page_ = http.get("/v1/audit/events", params={"type": "console_session.started"})
            if me in page_.text and '"method":"oidc"' in page_.text.replace(" ", ""):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(page_.text[-2000:])
    # The auditor role the ID token carried is in force on the Audit page.
    page.goto("/audit")
    assert page.get_by_role("heading", name=re.compile("Audit")).first.is_visible()


def _principal_of(server: Server, idp: Provider) -> str:
    """The principal the API gives the provider's subject (an API call with a bearer JWT)."""
    with server.client(idp.access_token()) as http:
        response = http.get("/v1/me")
    assert response.status_code == 200, response.text
    return str(response.json()["principal_id"])


def test_wrong_state_is_refused(browser: Browser, server: Server, idp: Provider) -> None:
    idp.redirect_edit = _edit("state", "forged-state")  # type: ignore[assignment]
    try:
        page = _start(browser, server)
        page.get_by_role("link", name=OIDC_BUTTON).click()
        assert "state is not the one this browser was sent with" in _refusal(page)
        assert _session_cookie(page) is None
    finally:
        idp.redirect_edit = None


def test_wrong_verifier_is_refused(browser: Browser, server: Server, idp: Provider) -> None:
    """Code injection: the attacker's own code (never redeemed), pasted into the victim's
    callback, is exchanged with the victim's verifier, which does not match its challenge."""
    stolen: list[str] = []
    try:
        idp.redirect_edit = _edit("code", "code-not-issued", stolen)  # type: ignore[assignment]
        attacker = _start(browser, server)
        attacker.get_by_role("link", name=OIDC_BUTTON).click()
        assert "unknown or already used" in _refusal(attacker)
        idp.redirect_edit = _edit("code", stolen[0])  # type: ignore[assignment]
        victim = _start(browser, server)
        victim.get_by_role("link", name=OIDC_BUTTON).click()
        assert "PKCE verification failed" in _refusal(victim)
        assert _session_cookie(victim) is None
    finally:
        idp.redirect_edit = None


def test_replayed_code_is_refused(browser: Browser, server: Server) -> None:
    """The callback URL (code and state) replayed, even with the pre-session cookie put
    back, signs nobody in: the pre-session was spent by the first use."""
    seen: list[str] = []
    cookies: list[str] = []
    page = _start(browser, server)
    page.on("request", lambda r: seen.append(r.url) if "/callback?" in r.url else None)
    page.on(
        "response",
        lambda r: (
            cookies.append(r.header_value("set-cookie") or "")
            if re.search(r"/sign-in/oidc\?", r.url)
            else None
        ),
    )
    page.get_by_role("link", name=OIDC_BUTTON).click()
    page.wait_for_url(re.compile(r"http://[^/]+/$"))
    first = _session_cookie(page)
    assert first and seen and cookies
    pre = re.match(r"privet_oidc=([^;]+)", cookies[-1])
    assert pre is not None
    page.context.add_cookies(
        [{"name": "privet_oidc", "value": pre.group(1), "url": server.url + "/sign-in/oidc"}]
    )
    page.goto(seen[-1])  # the same browser, its spent pre-session, the same callback
    assert "already used" in _refusal(page)
    assert _session_cookie(page) in (None, first)
    other = browser.new_context().new_page()  # another browser, the stolen callback URL
    other.goto(seen[-1])
    assert "no OIDC sign-in in progress" in _refusal(other)
    assert _session_cookie(other) is None


def test_expired_id_token_is_refused(browser: Browser, server: Server, idp: Provider) -> None:
    idp.id_token_ttl = -120
    try:
        page = _start(browser, server)
        page.get_by_role("link", name=OIDC_BUTTON).click()
        assert "has expired" in _refusal(page)
        assert _session_cookie(page) is None
    finally:
        idp.id_token_ttl = 300


def test_a_server_without_oidc_offers_no_oidc_sign_in(served: Served, browser: Browser) -> None:
    page = _start(browser, served.server)  # the shared server: no PRIVET_OIDC_* set
    assert page.get_by_role("link", name=OIDC_BUTTON).count() == 0
    response = page.goto("/sign-in/oidc")
    assert response is not None and response.status == 404
    assert "not configured" in page.content()
