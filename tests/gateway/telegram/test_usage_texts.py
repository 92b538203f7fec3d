"""What /usage and the daily limits say: when a limit resets, in hours and minutes."""

from __future__ import annotations

import datetime

from gateway.config import LimitsConfig
from gateway.store.usage import Period, Report, Totals, UserUsage
from gateway.telegram.usage_texts import (
    ESTIMATED_NOTE,
    SHOWN_USERS,
    duration,
    everyone_report,
    over_messages,
    own_report,
    until_midnight,
)

EVENING = datetime.datetime(2026, 12, 1, 20, 48, 0, tzinfo=datetime.UTC).timestamp()


def test_a_limit_resets_at_midnight_utc_in_hours_and_minutes() -> None:
    assert until_midnight(EVENING) == 3 * 3600 + 12 * 60
    assert over_messages(50, EVENING) == (
        "⏳ You have used today's 50 messages. The limit resets at 00:00 UTC (in 3 h 12 min)."
    )
    assert [duration(s) for s in (1, 59, 60, 61, 3600, 3601, 86_400)] == [
        "1 min",
        "1 min",
        "1 min",
        "2 min",
        "1 h",
        "1 h 1 min",
        "24 h",
    ]


def period(*users: UserUsage) -> Period:
    return Period("2026-12-01", "2026-12-01", users)


def test_reports_mark_estimates_and_list_a_bounded_number_of_users() -> None:
    exact = Totals(2, 100, 20, 0, 2)
    guessed = Totals(0, 40, 4, 44, 1)
    mine = UserUsage(42, exact + guessed, (("m1", exact), ("m2", guessed)))
    text = own_report(Report(period(mine), period(mine)), 42, LimitsConfig(), EVENING)
    assert "Today: 2 messages, ~164 tokens (~140 prompt, ~24 completion)" in text
    assert "• m1: 120 tokens in 2 runs" in text
    assert "• m2: ~44 tokens in 1 run" in text
    assert text.endswith(ESTIMATED_NOTE)
    assert "Daily limits" not in text, "no limits configured"
    many = [UserUsage(i, Totals(1, 10, 1, 0, 1), (("m1", exact),)) for i in range(1, 31)]
    everyone = everyone_report(Report(period(*many), period(*many)))
    assert everyone.count("• user ") == 2 * SHOWN_USERS
    assert f"• … and {30 - SHOWN_USERS} more user(s): 10 messages, 110 tokens" in everyone
    assert ESTIMATED_NOTE not in everyone
