"""What ``/usage``, ``/usage all`` and the daily limits say to users."""

from __future__ import annotations

import datetime
import math

from gateway.config import LimitsConfig
from gateway.store.usage import Period, Report, Totals, UserUsage

DAY = 86_400
SHOWN_USERS = 20
"""Users listed per period in ``/usage all`` at most (the rest are summed up in a line)."""
ESTIMATED_NOTE = "~ estimated: the provider reported no usage for those calls."
"""The footnote of a report that shows an estimate."""

USAGE_ADMIN_ONLY = (
    "🔒 /usage all is for the gateway's admins only (telegram.admin_users). "
    "/usage shows your own usage."
)
"""What a user who is not an admin is told when they send ``/usage all``."""
NO_SENDER = "I cannot tell who sent this, so I have no usage to show."
"""The answer to ``/usage`` from a sender Telegram did not name (an anonymous admin)."""


def until_midnight(now: float) -> float:
    """Seconds from wall-clock time ``now`` to the next 00:00 UTC."""
    return DAY - (now % DAY)


def duration(seconds: float) -> str:
    """``3 h 12 min``, ``45 min``, ``1 min`` (rounded up to the minute)."""
    hours, minutes = divmod(max(1, math.ceil(seconds / 60)), 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def resets(now: float, *, limits: int = 1) -> str:
    """When the daily limits reset, as said to users."""
    which = "The limit resets" if limits == 1 else "They reset"
    return f"{which} at 00:00 UTC (in {duration(until_midnight(now))})."


def over_messages(limit: int, now: float) -> str:
    """The reply to a message over the daily message limit."""
    return f"⏳ You have used today's {limit:,} messages. {resets(now)}"


def over_tokens(limit: int, used: int, now: float) -> str:
    """The reply to a message sent once today's tokens reached the daily token limit."""
    return f"⏳ You have used today's {limit:,} tokens ({used:,} so far). {resets(now)}"


def _tokens(totals: Totals) -> str:
    mark = "~" if totals.estimated else ""
    return f"{mark}{totals.tokens:,} tokens"


def _summary(totals: Totals) -> str:
    messages = f"{totals.messages:,} message{'' if totals.messages == 1 else 's'}"
    if not totals.tokens:
        return f"{messages}, no tokens"
    mark = "~" if totals.estimated else ""
    return (
        f"{messages}, {_tokens(totals)} "
        f"({mark}{totals.prompt:,} prompt, {mark}{totals.completion:,} completion)"
    )


def _models(models: tuple[tuple[str, Totals], ...] | list[tuple[str, Totals]]) -> list[str]:
    return [
        f"• {model}: {_tokens(totals)} in {totals.runs:,} run{'' if totals.runs == 1 else 's'}"
        for model, totals in models
    ]


def _month(period: Period) -> str:
    first = datetime.date.fromisoformat(period.first)
    return first.strftime("%B %Y")


def _estimated(report: Report) -> bool:
    return bool(report.today.totals.estimated or report.month.totals.estimated)


def own_report(report: Report, user_id: int, limits: LimitsConfig, now: float) -> str:
    """``/usage``: the sender's usage today and this month, by model, and their limits."""
    today, month = report.today.user(user_id), report.month.user(user_id)
    lines = ["📊 Your usage", f"Today: {_summary(today.totals)}", *_models(today.models)]
    lines += [f"This month ({_month(report.month)}): {_summary(month.totals)}"]
    lines += _models(month.models)
    limited = [
        f"{limit:,} {what} ({max(0, limit - used):,} left)"
        for limit, used, what in (
            (limits.user_daily_messages, today.totals.messages, "messages"),
            (limits.user_daily_tokens, today.totals.tokens, "tokens"),
        )
        if limit
    ]
    if limited:
        lines.append(f"Daily limits: {' and '.join(limited)}. {resets(now, limits=len(limited))}")
    if today.totals.estimated or month.totals.estimated:
        lines.append(ESTIMATED_NOTE)
    return "\n".join(lines)


def _user_line(user: UserUsage) -> str:
    who = "unattributed" if user.user_id is None else f"user {user.user_id}"
    return f"• {who}: {_summary(user.totals)}"


def _period_lines(title: str, period: Period) -> list[str]:
    lines = [f"{title}: {_summary(period.totals)}"]
    lines += [_user_line(user) for user in period.users[:SHOWN_USERS]]
    hidden = period.users[SHOWN_USERS:]
    if hidden:
        rest = sum((user.totals for user in hidden), Totals())
        lines.append(f"• … and {len(hidden)} more user(s): {_summary(rest)}")
    models = period.models()
    if models:
        lines.append("By model: " + ", ".join(f"{m} {_tokens(t)}" for m, t in models))
    return lines


def everyone_report(report: Report) -> str:
    """``/usage all``: every user's usage today and this month, and the totals by model."""
    lines = ["📊 Usage of everyone"]
    lines += _period_lines(f"Today ({report.today.first})", report.today)
    lines += _period_lines(f"This month ({_month(report.month)})", report.month)
    if _estimated(report):
        lines.append(ESTIMATED_NOTE)
    return "\n".join(lines)
