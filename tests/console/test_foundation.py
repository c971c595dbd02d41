"""The console's foundation in a real browser against a real `privet serve`: sign-in with
an API key, server-side sessions, CSRF and Origin checks, security headers, the layout."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from pathlib import Path

from tests.console.conftest import (
    HERE,
    axe_violations,
    csrf_of,
    session_http,
    sign_in,
)

STATIC = Path(__file__).resolve().parents[2] / "platform" / "privet" / "console" / "static"


def _sri(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def test_vendored_assets_match_their_manifests() -> None:
    for folder in (STATIC, HERE):
        table = (folder / "VENDORED.md").read_text()
        rows = re.findall(r"^\| (\S+\.js) \|.*\| (sha384-\S+) \|$", table, flags=re.M)
        assert rows, folder
        for name, digest in rows:
            assert _sri(folder / name) == digest, name


def test_admin_signs_in_and_sees_home(console, browser, shots) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "root")
    page = watched.page
    assert page.get_by_role("heading", name="Home", level=1).is_visible()
    assert page.get_by_role("cell", name=console.name, exact=True).is_visible()
    # the script came from this server, with its integrity hash, and ran under the CSP
    assert page.evaluate("typeof window.htmx") == "object"
    assert axe_violations(page) == []
    page.screenshot(path=str(shots / "home.png"), full_page=True)
    assert watched.problems == []
    watched.context.close()


def test_every_console_response_carries_the_security_headers(console) -> None:  # type: ignore[no-untyped-def]
    import httpx

    with httpx.Client(base_url=console.url) as http:
        for path in ("/sign-in", "/", "/static/console.css", "/no-such-page"):
            headers = http.get(path).headers
            csp = headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
        # the API keeps its own answers
        assert http.get("/v1/projects").headers["content-type"] == "application/problem+json"


def test_a_bad_key_is_refused_with_the_reason(console, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=console.url)
    page = context.new_page()
    page.goto("/")  # not signed in: sent to sign in, and back afterwards
    assert page.url.endswith("/sign-in?next=/")
    page.get_by_label("API key").fill("pvt_" + "A" * 16 + "_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "the API key is not valid"
    context.close()


def test_session_cookie_flags_and_only_a_digest_at_rest(console, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "root")
    cookie = next(c for c in watched.context.cookies() if c["name"] == "privet_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not cookie["secure"]  # served over plain HTTP here; Secure over TLS
    assert watched.page.evaluate("document.cookie") == ""
    db = sqlite3.connect(console.server.home / "privet.db")
    digests = [r[0] for r in db.execute("SELECT digest FROM console_sessions")]
    db.close()
    assert hashlib.sha256(cookie["value"].encode()).hexdigest() in digests
    assert cookie["value"].encode() not in (console.server.home / "privet.db").read_bytes()
    watched.context.close()


def test_forged_posts_are_refused(console, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "root")
    token = csrf_of(watched.page)
    with session_http(console, watched) as http:
        origin = {"origin": console.url}
        no_token = http.post("/sign-out", headers=origin)
        assert no_token.status_code == 403
        assert "CSRF" in no_token.text
        wrong = http.post("/sign-out", data={"csrf": "0" * 64}, headers=origin)
        assert wrong.status_code == 403
        elsewhere = http.post(
            "/sign-out", data={"csrf": token}, headers={"origin": "https://evil.example"}
        )
        assert elsewhere.status_code == 403
        assert "origin check" in elsewhere.text
        no_origin = http.post("/sign-out", data={"csrf": token})
        assert no_origin.status_code == 403
        # none of them ended the session
        assert http.get("/").status_code == 200
    watched.context.close()


def test_a_cookie_replayed_after_sign_out_signs_nobody_in(console, browser) -> None:  # type: ignore[no-untyped-def]
    watched = sign_in(browser, console, "root")
    cookies = watched.context.cookies()
    watched.page.get_by_role("button", name="Sign out").click()
    watched.page.wait_for_url(re.compile(r".*/sign-in$"))
    replay = browser.new_context(base_url=console.url)
    replay.add_cookies(cookies)
    page = replay.new_page()
    page.goto("/")
    assert "/sign-in" in page.url
    with session_http(console, watched) as http:
        http.cookies.update({c["name"]: c["value"] for c in cookies})
        assert http.get("/").status_code == 303
    replay.close()
    watched.context.close()
