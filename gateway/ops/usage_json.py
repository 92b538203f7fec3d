"""Usage as JSON, for the admin endpoint's ``/usage`` and the usage section of ``/status``.

Shape (docs/operations.md): a period is ``{"first", "last", "totals", "models", "users"}``;
totals are ``{"messages", "prompt_tokens", "completion_tokens", "tokens",
"estimated_tokens", "runs"}``; ``models`` lists ``{"model", ...totals}`` (messages have no
model: 0 there), most tokens first; ``users`` lists ``{"user_id", ...totals, "models"}``
(``user_id`` ``null``: runs nobody could be named for). ``/status`` carries the short form:
each period's ``users`` cut to the ``STATUS_USERS`` with the most tokens (without their
models), and ``users_total`` saying how many there were.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.store.usage import Period, Report, Totals

STATUS_USERS = 10
"""Users per period in ``/status`` at most (``/usage`` has them all)."""


def totals_json(totals: Totals) -> dict[str, int]:
    """One set of totals."""
    return {
        "messages": totals.messages,
        "prompt_tokens": totals.prompt,
        "completion_tokens": totals.completion,
        "tokens": totals.tokens,
        "estimated_tokens": totals.estimated,
        "runs": totals.runs,
    }


def _models(models: Iterable[tuple[str, Totals]]) -> list[dict[str, Any]]:
    return [{"model": model, **totals_json(totals)} for model, totals in models]


def period_json(period: Period, *, short: bool = False) -> dict[str, Any]:
    """One period (today, this month); ``short``: the form of ``/status``."""
    body: dict[str, Any] = {
        "first": period.first,
        "last": period.last,
        "totals": totals_json(period.totals),
        "models": _models(period.models()),
    }
    if short:
        body["users"] = [
            {"user_id": user.user_id, **totals_json(user.totals)}
            for user in period.users[:STATUS_USERS]
        ]
        body["users_total"] = len(period.users)
    else:
        body["users"] = [
            {"user_id": user.user_id, **totals_json(user.totals), "models": _models(user.models)}
            for user in period.users
        ]
    return body


def usage_json(report: Report, *, short: bool = False) -> dict[str, Any]:
    """Today and this month (UTC); ``short``: the form of ``/status``."""
    return {
        "today": period_json(report.today, short=short),
        "month": period_json(report.month, short=short),
    }
