"""Statutory deadlines of a data-subject request.

- GDPR Art. 12(3): respond without undue delay and at the latest one month after receipt
  (the same day of the next month, or that month's last day when it has none).
- CCPA regulations §7021: confirm receipt within 10 business days; respond within 45
  calendar days. Business days here are Monday to Friday (public holidays are not known to
  the platform, so the acknowledgement deadline errs early, never late).
Deadlines fall at the end (23:59:59 UTC) of their day.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def add_one_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def add_business_days(day: date, n: int) -> date:
    current = day
    added = 0
    while added < n:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


def deadlines(
    regime: str, received: date, *, ack_business_days: int = 10, response_days: int = 45
) -> tuple[datetime | None, datetime]:
    """(acknowledgement deadline or None, response deadline) for a request received on
    ``received`` under ``regime`` (gdpr | ccpa)."""
    if regime == "ccpa":
        return (
            end_of_day(add_business_days(received, ack_business_days)),
            end_of_day(received + timedelta(days=response_days)),
        )
    return None, end_of_day(add_one_month(received))
