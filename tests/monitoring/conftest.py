"""Monitoring fixtures: the inference fixtures (tiny BERT versions, paths, ledger events),
settings for fast judgement, and a controllable clock for time windows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.inference.conftest import (  # noqa: F401 - fixtures re-exported
    _fast_state_ttl,
    change_state,
    events,
    ledger_events,
    make_version,
    paths,
    project,
    tiny_base,
)


@pytest.fixture(autouse=True)
def _monitoring_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Aggregates are flushed on every request; small windows are judged."""
    from privet.config import clear_settings_caches

    monkeypatch.setenv("PRIVET_MONITORING_FLUSH_EVERY", "1")
    monkeypatch.setenv("PRIVET_MONITORING_JUDGE_INTERVAL_S", "0")
    monkeypatch.setenv("PRIVET_MONITORING_MIN_WINDOW_COUNT", "40")
    monkeypatch.setenv("PRIVET_MONITORING_MIN_OUTCOMES", "20")
    clear_settings_caches()
    yield
    monkeypatch.undo()
    clear_settings_caches()


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)


@pytest.fixture
def clock(app: Any, runtime: Any, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for prediction times and monitoring windows (the start of a window)."""
    from privet.kit.ids import utcnow
    from privet.monitoring.hub import window_start

    clk = Clock(window_start(utcnow(), 3600) - timedelta(hours=6))
    monitor = runtime.monitoring.monitor
    monkeypatch.setattr(monitor, "clock", clk)
    monkeypatch.setattr("privet.inference.service.utcnow", clk)
    return clk
