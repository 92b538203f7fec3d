"""Retention: what the store deletes once it is old and done, and the task that prunes it.

Rules (ages in wall-clock seconds, from ``[store]`` in the config):

* **Inbox entries** go ``inbox`` seconds after they arrived, once answered (a final outcome
  closed them). An entry still unanswered is never deleted, whatever its age; nor is the
  newest entry (long polling resumes after its update id).
* **Outcomes** go ``outcomes`` seconds after they were recorded, except those of a message
  whose inbox entry is still unanswered.
* **Sessions**: a session's history (its turns) goes ``sessions`` seconds after its last use
  (its last answered turn, else its start), and its row with it, unless it is still a
  thread's current session: then only the history goes, and the session goes on.
* **Usage** (tokens per day, messages counted) goes ``USAGE_RETENTION_DAYS`` after its
  UTC day (not configurable: it is small, and what budgets are compared with).
* **Thread records** and the key pool's state are never pruned: they are live state.
* Deletes run on the store's writer in transactions of at most ``CHUNK`` rows, so the
  threads' writes go on between them; the candidates are found by a reader first, and each
  delete checks its conditions again (a session used meanwhile is kept).
* After a prune the write-ahead log is truncated (``Store.prune``); between prunes the
  gateway's passive checkpoints keep it short.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio
import attrs
from loguru import logger

from gateway.config import StoreConfig
from gateway.exceptions import StoreUnavailableError
from gateway.store.fence import Connection

if TYPE_CHECKING:
    from gateway.store.store import Store

T = TypeVar("T")
DAY = 86_400.0
CHUNK = 500
"""Rows deleted per transaction at most (sessions: per statement, a chunk of sessions)."""
SESSIONS_PER_CHUNK = 50
USAGE_RETENTION_DAYS = 400
"""Days of usage kept (a year, and this month of last year to compare with)."""
USAGE_TABLES = ("usage_tokens", "usage_messages")


def utc_day(wall: float) -> str:
    """The UTC date of wall-clock time ``wall`` (``YYYY-MM-DD``): how usage days are stored."""
    return datetime.datetime.fromtimestamp(wall, datetime.UTC).date().isoformat()


@attrs.frozen
class Retention:
    """How long the store keeps what is done (seconds; ``None``: forever)."""

    inbox: float | None
    """An answered inbox entry, from its arrival."""
    outcomes: float | None
    """An outcome, from when it was recorded."""
    sessions: float | None
    """A session's history, from its last use."""
    usage: float | None = USAGE_RETENTION_DAYS * DAY
    """Usage rows, from their day."""

    @classmethod
    def from_config(cls, config: StoreConfig) -> Retention:
        def seconds(days: float) -> float | None:
            return days * DAY if days > 0 else None

        return cls(
            seconds(config.inbox_retention_days),
            seconds(config.outcomes_retention_days),
            seconds(config.session_retention_days),
        )


@attrs.frozen
class Pruned:
    """What one prune deleted."""

    inbox: int = 0
    """Inbox entries."""
    outcomes: int = 0
    """Outcomes."""
    sessions: int = 0
    """Session rows (sessions no thread goes on with)."""
    turns: int = 0
    """Turns of session histories."""
    usage: int = 0
    """Usage rows (tokens per day, messages counted)."""


class Reading(Protocol):
    def __call__(self, func: Callable[[Connection], T], /) -> Awaitable[T]: ...


class Writing(Protocol):
    def __call__(
        self, func: Callable[[Connection], T], /, *, atomic: bool = ...
    ) -> Awaitable[T]: ...


_INBOX_DONE = (
    "received_at < ? AND outcome IS NOT NULL AND update_id < (SELECT MAX(update_id) FROM inbox)"
)
_OUTCOME_DONE = (
    "at < ? AND NOT EXISTS (SELECT 1 FROM inbox WHERE inbox.chat_id = outcomes.chat_id"
    " AND inbox.message_id = outcomes.message_id AND inbox.outcome IS NULL)"
)
_SESSION_UNUSED = "COALESCE(used_at, created_at) < ?"


_INBOX_CANDIDATES = f"SELECT update_id FROM inbox WHERE {_INBOX_DONE}"  # noqa: S608 - constants
_OUTCOME_CANDIDATES = f"SELECT rowid FROM outcomes WHERE {_OUTCOME_DONE}"  # noqa: S608 - constants
_SESSION_CANDIDATES = f"SELECT session_id FROM sessions WHERE {_SESSION_UNUSED}"  # noqa: S608 - constants


async def prune(read: Reading, write: Writing, retention: Retention, now: float) -> Pruned:
    """Delete what ``retention`` no longer keeps at ``now`` (see the module's rules)."""
    inbox = outcomes = sessions = turns = usage = 0
    if retention.inbox is not None:
        before = now - retention.inbox
        for chunk in _chunks(await read(_select(_INBOX_CANDIDATES, before)), CHUNK):
            inbox += await write(_delete("inbox", "update_id", chunk, _INBOX_DONE, before))
    if retention.outcomes is not None:
        before = now - retention.outcomes
        for chunk in _chunks(await read(_select(_OUTCOME_CANDIDATES, before)), CHUNK):
            outcomes += await write(_delete("outcomes", "rowid", chunk, _OUTCOME_DONE, before))
    if retention.sessions is not None:
        before = now - retention.sessions
        unused = await read(_select(_SESSION_CANDIDATES, before))
        for chunk in _chunks(unused, SESSIONS_PER_CHUNK):
            while True:
                deleted = await write(_delete_turns(chunk, before))
                turns += deleted
                if deleted < CHUNK:
                    break
            sessions += await write(_delete_sessions(chunk, before))
    if retention.usage is not None:
        day = utc_day(now - retention.usage)
        for table in USAGE_TABLES:
            while True:
                deleted = await write(_delete_usage(table, day))
                usage += deleted
                if deleted < CHUNK:
                    break
    return Pruned(inbox, outcomes, sessions, turns, usage)


def _select(query: str, before: float) -> Callable[[Connection], list[int | str]]:
    def run(db: Connection) -> list[int | str]:
        return [row[0] for row in db.execute(query, (before,)).fetchall()]

    return run


def _delete(
    table: str, column: str, chunk: Sequence[int | str], condition: str, before: float
) -> Callable[[Connection], int]:
    marks = ", ".join("?" * len(chunk))
    statement = f"DELETE FROM {table} WHERE {column} IN ({marks}) AND {condition}"  # noqa: S608 - constants and placeholders

    def run(db: Connection) -> int:
        return db.execute(statement, (*chunk, before)).rowcount

    return run


def _delete_turns(sessions: Sequence[int | str], before: float) -> Callable[[Connection], int]:
    marks = ", ".join("?" * len(sessions))
    statement = (
        "DELETE FROM turns WHERE id IN (SELECT id FROM turns WHERE session_id IN"  # noqa: S608 - constants and placeholders
        f" (SELECT session_id FROM sessions WHERE session_id IN ({marks})"
        f" AND {_SESSION_UNUSED}) LIMIT {CHUNK})"
    )

    def run(db: Connection) -> int:
        return db.execute(statement, (*sessions, before)).rowcount

    return run


def _delete_sessions(sessions: Sequence[int | str], before: float) -> Callable[[Connection], int]:
    marks = ", ".join("?" * len(sessions))
    statement = (
        f"DELETE FROM sessions WHERE session_id IN ({marks}) AND {_SESSION_UNUSED}"  # noqa: S608 - constants and placeholders
        " AND session_id NOT IN (SELECT session_id FROM threads)"
    )

    def run(db: Connection) -> int:
        return db.execute(statement, (*sessions, before)).rowcount

    return run


def _delete_usage(table: str, before_day: str) -> Callable[[Connection], int]:
    statement = (
        f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE day < ?"  # noqa: S608 - constants
        f" LIMIT {CHUNK})"
    )

    def run(db: Connection) -> int:
        return db.execute(statement, (before_day,)).rowcount

    return run


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def keep_pruned(
    store: Store, config: StoreConfig, clock: Callable[[], float] = time.time
) -> None:
    """Forever: prune ``store`` now and every ``config.prune_interval`` seconds (off the event
    loop, in the store's worker threads). A failed prune is logged and tried again at the
    next interval."""
    retention = Retention.from_config(config)
    while True:
        try:
            pruned = await store.prune(retention, clock())
        except StoreUnavailableError as error:
            logger.warning(
                "store prune failed (tried again in {s:.0f}s): {e}",
                s=config.prune_interval,
                e=error,
            )
        else:
            if pruned != Pruned():
                logger.info(
                    "store pruned: {inbox} inbox entries, {outcomes} outcomes, {sessions}"
                    " sessions, {turns} turns, {usage} usage rows",
                    **attrs.asdict(pruned),
                )
        await anyio.sleep(config.prune_interval)
