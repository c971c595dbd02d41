"""The console's sessions as a state machine (Hypothesis), over its real HTTP endpoints on
the real app (SQLite and PostgreSQL): sign in, sign out, revoke the key a session signed
in with (the API's DELETE /v1/api-keys/{id}), idle and absolute expiry, old cookies
replayed, CSRF tokens of another session.

Invariant: a request is served as a principal only with a live session (not ended, not
past its idle or absolute deadline) whose key is unrevoked, and as that session's own
principal; an unsafe request is never accepted with another session's CSRF token.

Time: the code reads the clock itself (`utcnow`), so a session's time passes by moving
its own deadlines in the table (exactly what waiting would do to that row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import update

from privet.auth import web_sessions
from privet.auth.settings import get_console_session_settings
from privet.db import session_scope
from privet.kit.ids import utcnow
from tests.conftest import Caller

ORIGIN = "http://testserver"
WHO = re.compile(r"<span class=\"muted\">\(([\w-]+)\)</span>")
CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Key:
    id: str
    secret: str
    principal_id: str
    revoked: bool = False


@dataclass
class Browser:
    """One session cookie a browser holds (or held: old cookies stay for replays)."""

    token: str
    key: Key
    ended: bool = False
    expired: bool = False

    @property
    def live(self) -> bool:
        return not (self.ended or self.expired or self.key.revoked)


def _sign_in(http: TestClient, secret: str) -> str | None:
    http.cookies.clear()
    form = http.get("/sign-in")
    pre = form.cookies.get("privet_signin")
    match = CSRF_INPUT.search(form.text)
    assert pre and match, form.text[-500:]
    http.cookies.clear()
    answer = http.post(
        "/sign-in",
        data={"api_key": secret, "csrf": match.group(1), "next": "/"},
        headers={"Origin": ORIGIN, "Cookie": f"privet_signin={pre}"},
    )
    http.cookies.clear()
    return answer.cookies.get("privet_session") if answer.status_code == 303 else None


def _served_as(http: TestClient, token: str) -> str | None:
    """Whom GET / is served as with this cookie (None: sent to sign in)."""
    http.cookies.clear()
    answer = http.get("/", headers={"Cookie": f"privet_session={token}"})
    http.cookies.clear()
    if answer.status_code == 303:
        assert answer.headers["location"].startswith("/sign-in"), answer.headers
        return None
    assert answer.status_code == 200, answer.text[-500:]
    match = WHO.search(answer.text)
    assert match, answer.text[:3000]
    return match.group(1)


def _sign_out(http: TestClient, token: str, csrf: str) -> int:
    http.cookies.clear()
    answer = http.post(
        "/sign-out",
        data={"csrf": csrf},
        headers={"Origin": ORIGIN, "Cookie": f"privet_session={token}"},
    )
    http.cookies.clear()
    return answer.status_code


def machine_for(runtime: Any, http: TestClient, admin: Caller, people: list[str]) -> type:
    idle = timedelta(minutes=get_console_session_settings().session_idle_minutes)

    class ConsoleSessions(RuleBasedStateMachine):
        keys = Bundle("keys")
        browsers = Bundle("browsers")

        def __init__(self) -> None:
            super().__init__()
            self.all: list[Browser] = []

        @initialize(target=keys)
        def first_key(self) -> Key:
            return self._mint(people[0])

        @rule(target=keys, who=st.sampled_from(people))
        def mint(self, who: str) -> Key:
            return self._mint(who)

        def _mint(self, who: str) -> Key:
            from tests.conftest import mint_key

            with session_scope(runtime.engine) as session:
                made = mint_key(session, runtime, who, "machine key")
            return Key(made.id, made.key, who)

        @rule(target=browsers, key=keys)
        def sign_in(self, key: Key) -> Browser:
            token = _sign_in(http, key.secret)
            if key.revoked:
                assert token is None, "a revoked key signed in"
                return Browser("pvs_never-issued", key, ended=True)
            assert token is not None
            browser = Browser(token, key)
            self.all.append(browser)
            return browser

        @rule(key=keys)
        def revoke(self, key: Key) -> None:
            answer = http.delete(f"/v1/api-keys/{key.id}", headers=admin.headers)
            http.cookies.clear()
            assert answer.status_code in (200, 409), answer.text
            key.revoked = True

        @rule(browser=browsers)
        def sign_out(self, browser: Browser) -> None:
            status = _sign_out(http, browser.token, web_sessions.csrf_token(browser.token))
            if browser.live:
                assert status == 303
                browser.ended = True
            else:
                assert status in (401, 403), status  # nobody to sign out

        @rule(browser=browsers, other=browsers)
        def sign_out_with_anothers_csrf(self, browser: Browser, other: Browser) -> None:
            if other.token == browser.token:
                return
            status = _sign_out(http, browser.token, web_sessions.csrf_token(other.token))
            assert status in (401, 403), f"another session's CSRF token was accepted: {status}"

        @rule(browser=browsers, absolute=st.booleans())
        def time_passes(self, browser: Browser, absolute: bool) -> None:
            from privet.auth.web_sessions import ConsoleSession

            now = utcnow()
            values = (
                {"expires_at": now - timedelta(seconds=1)}
                if absolute
                else {"last_seen_at": now - idle - timedelta(seconds=1)}
            )
            with session_scope(runtime.engine) as session:
                session.execute(
                    update(ConsoleSession)
                    .where(ConsoleSession.digest == web_sessions.digest(browser.token))  # type: ignore[arg-type]
                    .values(**values)
                )
            browser.expired = True

        @rule(browser=consumes(browsers))
        def forget(self, browser: Browser) -> None:
            """The browser drops its cookie (its row lives on until it expires)."""

        @invariant()
        def served_only_as_a_live_session(self) -> None:
            for browser in self.all:
                served = _served_as(http, browser.token)
                if browser.live:
                    assert served == browser.key.principal_id
                else:
                    assert served is None, (browser, served)

    return ConsoleSessions


def test_console_sessions_state_machine(runtime: Any, admin: Caller, make_caller: Any) -> None:
    from privet.console.gateway import create_gateway

    people = [make_caller("auditor", None, name).principal_id for name in ("Ada", "Bea")]
    with TestClient(create_gateway(runtime=runtime), follow_redirects=False) as client:
        machine = machine_for(runtime, client, admin, people)
        _run(machine)


def _run(machine: type) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=12,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
