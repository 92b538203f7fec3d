"""The supervisor's table, drawn with rich, from the admin endpoint's JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table


def _age(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}s"


def render(status: dict[str, Any]) -> Group:
    """Threads (state, generation, queue, run age, progress, restarts) and the key pool."""
    threads = Table(title="Threads", title_justify="left")
    for column in (
        "thread",
        "state",
        "phase",
        "gen",
        "queued",
        "mailbox",
        "run age",
        "last progress",
        "restarts",
    ):
        threads.add_column(
            column, justify="right" if column not in ("thread", "state", "phase") else "left"
        )
    for row in status["threads"]:
        threads.add_row(
            row["key"],
            row["state"],
            str(row.get("phase", "-")),
            str(row.get("generation", "-")),
            str(row.get("queued", "-")),
            str(row["mailbox"]),
            str(row.get("run_age", "-")),
            _age(row["last_progress_age"]),
            str(row["restarts"]),
        )
    keys = Table(title="Credential pool", title_justify="left")
    for column in ("pool", "key", "state", "cooldown left", "requests", "failures", "reason"):
        keys.add_column(column)
    for pool in status["pools"]:
        for key in pool["keys"]:
            keys.add_row(
                pool["name"],
                key["label"],
                key["state"],
                _age(key["cooldown_left"]) if key["cooldown_left"] else "-",
                str(key["requests"]),
                str(key["failures"]),
                key["reason"][:40],
            )
    stats = status["statistics"]
    summary = Table.grid(padding=(0, 2))
    summary.add_row(*(f"{name}: {value}" for name, value in stats.items()))
    return Group(threads, keys, summary)
