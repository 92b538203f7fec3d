"""The supervisor's table, drawn with rich, from the admin endpoint's JSON.

Rule: nothing that names something is ever cut. Thread keys and key labels are the first
columns and never wrap or shorten; on a narrow terminal the columns that matter least are
left out instead (``Column.priority``: the higher, the sooner it goes), and the summary
flows onto as many lines as it needs. Only a key longer than the whole terminal folds onto
a second line; even then none of it is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from gateway.cluster.status import ranges


def seconds(value: Any) -> str:
    """A duration in seconds (``None``: none) as the table shows it."""
    if value is None:
        return "-"
    value = float(value)
    if value >= 3600:
        return f"{value / 3600:.1f}h"
    if value >= 120:
        return f"{value / 60:.1f}m"
    return f"{value:.1f}s"


def _plain(value: Any) -> str:
    return "-" if value is None else str(value)


@attrs.frozen
class Column:
    """One column of a table, and how to draw a row's cell in it."""

    header: str
    """The column's heading."""
    cell: Callable[[dict[str, Any]], str]
    """The cell's text for one row of the JSON."""
    priority: int = 0
    """0: always shown; otherwise the higher, the sooner it is left out when space is short."""
    numeric: bool = False
    """Right-aligned."""


THREAD_COLUMNS = (
    Column("thread", lambda row: str(row["key"])),
    Column("state", lambda row: str(row["state"])),
    Column("phase", lambda row: _plain(row.get("phase")), priority=1),
    Column("queued", lambda row: _plain(row.get("queued")), priority=2, numeric=True),
    Column("run age", lambda row: seconds(row.get("run_age")), priority=3, numeric=True),
    Column("restarts", lambda row: str(row["restarts"]), priority=4, numeric=True),
    Column("gen", lambda row: _plain(row.get("generation")), priority=5, numeric=True),
    Column("mailbox", lambda row: str(row["mailbox"]), priority=6, numeric=True),
    Column(
        "last progress", lambda row: seconds(row["last_progress_age"]), priority=7, numeric=True
    ),
)
"""The threads table, in display order."""

KEY_COLUMNS = (
    Column("pool", lambda row: str(row["pool"])),
    Column("key", lambda row: str(row["label"])),
    Column("state", lambda row: str(row["state"])),
    Column(
        "cooldown left",
        lambda row: seconds(row["cooldown_left"]) if row["cooldown_left"] else "-",
        priority=1,
        numeric=True,
    ),
    Column("reason", lambda row: str(row["reason"] or "-"), priority=2),
    Column("failures", lambda row: str(row["failures"]), priority=3, numeric=True),
    Column("requests", lambda row: str(row["requests"]), priority=4, numeric=True),
)
"""The credential pool's table, in display order."""


def _yes(value: Any) -> str:
    return "yes" if value else "-"


REPLICA_COLUMNS = (
    Column("replica", lambda row: str(row["id"]) + (" (this)" if row["this"] else "")),
    Column("state", lambda row: "alive" if row["alive"] else "gone"),
    Column("shards", lambda row: str(row["shards_held"]), numeric=True),
    Column("threads", lambda row: _plain(row["threads_live"]), priority=1, numeric=True),
    Column("poller", lambda row: _yes(row["leads_poller"]), priority=2),
    Column("heartbeat", lambda row: seconds(row["heartbeat_age"]), priority=3, numeric=True),
)
"""The replicas table (with several replicas on PostgreSQL), in display order."""


def _tokens(row: dict[str, Any]) -> str:
    return ("~" if row.get("estimated_tokens") else "") + f"{row['tokens']:,}"


USAGE_COLUMNS = (
    Column("usage", lambda row: str(row["period"])),
    Column("tokens", _tokens, numeric=True),
    Column("messages", lambda row: f"{row['messages']:,}", priority=1, numeric=True),
    Column("prompt", lambda row: f"{row['prompt_tokens']:,}", priority=3, numeric=True),
    Column("completion", lambda row: f"{row['completion_tokens']:,}", priority=4, numeric=True),
    Column("runs", lambda row: f"{row['runs']:,}", priority=2, numeric=True),
)
"""The usage table (today, this month, and today by model), in display order."""

REASON_WIDTH = 40
"""The reason column wraps beyond this (it is prose, and it is the one column that wraps)."""
REASON_FIT = 20
"""The width the reason column needs to be shown at all (it wraps to fit)."""

_EDGE = 4  # a table's outer border and padding: "│ " ... " │"
_SEPARATOR = 3  # between two columns: " │ "


def fit(
    columns: Sequence[Column], rows: Sequence[dict[str, Any]], width: int
) -> list[tuple[Column, list[str]]]:
    """The columns that fit in ``width`` (those of priority 0 always), in display order,
    each with its cells; the least important ones are dropped first."""
    cells = {column.header: [column.cell(row) for row in rows] for column in columns}

    def natural(column: Column) -> int:
        widest = max((len(text) for text in cells[column.header]), default=0)
        if column.header == "reason":
            widest = min(widest, REASON_FIT)
        return max(len(column.header), widest)

    kept = list(columns)
    dropping = sorted((c for c in columns if c.priority), key=lambda c: -c.priority)
    while dropping and _EDGE + sum(map(natural, kept)) + _SEPARATOR * (len(kept) - 1) > width:
        kept.remove(dropping.pop(0))
    return [(column, cells[column.header]) for column in kept]


def _table(
    title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]], width: int
) -> Table:
    table = Table(title=title, title_justify="left")
    fitted = fit(columns, rows, width)
    for column, _ in fitted:
        prose = column.header == "reason"
        table.add_column(
            column.header,
            justify="right" if column.numeric else "left",
            overflow="fold",  # never "…": what does not fit goes onto the next line
            max_width=REASON_WIDTH if prose else None,
        )
    for index in range(len(rows)):
        table.add_row(*(texts[index] for _, texts in fitted))
    return table


def _pool_rows(status: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for pool in status["pools"]:
        for key in pool["keys"]:
            yield {"pool": pool["name"], **key}


def _usage_rows(usage: dict[str, Any]) -> list[dict[str, Any]]:
    """Today, this month, then today's models and users (``~``: some of it estimated)."""
    today = usage["today"]
    rows = [
        {"period": "today", **today["totals"]},
        {"period": "this month", **usage["month"]["totals"]},
    ]
    rows += [{"period": f"  today: {m['model']}", **m} for m in today["models"]]
    for user in today.get("users", ()):
        who = "unattributed" if user["user_id"] is None else f"user {user['user_id']}"
        rows.append({"period": f"  today: {who}", **user})
    return rows


def _usage_title(usage: dict[str, Any]) -> str:
    today = usage["today"]
    shown, total = len(today.get("users", ())), today.get("users_total", 0)
    more = f"; today's top {shown} of {total} users" if total > shown else ""
    return f"Usage (UTC; ~ estimated{more})"


def _cluster(cluster: dict[str, Any], width: int) -> Iterable[Table | Text]:
    live, total = cluster["replicas_live"], cluster["shards_total"]
    title = f"Replicas ({live} live; {total} shards, {cluster['shards_unowned']} unowned)"
    replicas = cluster["replicas"]
    yield _table(title, REPLICA_COLUMNS, replicas, width)
    for replica in replicas:
        if replica["shards"]:  # wraps as prose: every shard is shown
            yield Text(f"shards of {replica['id']}: {ranges(replica['shards'])}")


@attrs.frozen
class StatusView:
    """The status table for any terminal width (a rich renderable)."""

    status: dict[str, Any]
    """The admin endpoint's ``/status`` JSON."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        status = self.status
        cluster = status.get("cluster")
        if cluster:
            yield from _cluster(cluster, width)
        yield _table("Threads", THREAD_COLUMNS, status["threads"], width)
        yield _table("Credential pool", KEY_COLUMNS, list(_pool_rows(status)), width)
        usage = status.get("usage")
        if usage:
            yield _table(_usage_title(usage), USAGE_COLUMNS, _usage_rows(usage), width)
        items = (
            Text(f"{name}: {value}", no_wrap=True) for name, value in status["statistics"].items()
        )
        yield Columns(items, padding=(0, 2))


def render(status: dict[str, Any]) -> Group:
    """The replicas and their shards (with several replicas), threads (key, state, phase,
    queue, run age, restarts, ...), the key pool and the usage totals (when the status has
    them), fitted to the terminal it is printed on."""
    return Group(StatusView(status))
