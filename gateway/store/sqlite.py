"""The SQLite store: durable inbox, thread records, outcomes, session histories, pool state.

One file (WAL mode, ``synchronous=NORMAL``: a commit appends to the WAL without an fsync).
Small statements (an inbox row, a thread record, an outcome, a turn, the bounded recent
turns of a session) run on the event loop's thread: they take tens of microseconds, less than
a hop to a worker thread, and measurably better under load (``docs/performance.md``). Reads
that can be large (the start-up replay, an operator's listing) run in a worker thread on a
short-lived connection of their own, which WAL lets read while the main one writes.

Rules:

* Inbox rows, thread records and outcomes are committed before the call returns.
* A session's history is written only by ``save``, in the transaction of the thread record
  that concludes the answered run it belongs to: a run's history and its conclusion land
  together or not at all, and never in another thread's transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import attrs

from actors.thread.records import Concluded, Exchange, Outcome, ThreadKey, ThreadRecord, Turn
from gateway.exceptions import StoreUnavailableError
from gateway.store.codec import key_text, record_from_json, record_to_json
from gateway.store.schema import FINAL, SCHEMA, TRIGGERS, migrate, transaction
from providers.pool import SavedKeyState

T = TypeVar("T")
RECENT_TURNS = 500
"""Turns of a session read for one answer at most, whatever the character budget."""


def _insert_outcomes(
    db: sqlite3.Connection, key: ThreadKey, concluded: Sequence[Concluded]
) -> None:
    """One statement for all of them; a final outcome also closes its inbox entry (trigger)."""
    rows = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(concluded))
    at, thread = time.time(), key_text(key)
    values = [
        v
        for c in concluded
        for v in (thread, c.message_id, c.outcome.value, c.detail, at, key.chat_id)
    ]
    db.execute(
        "INSERT INTO outcomes (thread_key, message_id, outcome, detail, at, chat_id)"  # noqa: S608 - placeholders only
        f" VALUES {rows}",
        values,
    )


def _append_exchange(db: sqlite3.Connection, exchange: Exchange) -> None:
    """Add an answered turn to its session (replacing the last one, for ``/retry``)."""
    session = exchange.session_id
    if exchange.replaces_last:
        db.execute(
            "DELETE FROM turns WHERE session_id = ? AND id >= (SELECT MAX(id) FROM turns"
            " WHERE session_id = ? AND role = 'user')",
            (session, session),
        )
    turns = exchange.turns
    if turns:
        rows = ", ".join(["(?, ?, ?, ?)"] * len(turns))  # one statement
        values = [v for t in turns for v in (session, t.role, t.content, len(t.content))]
        db.execute(
            f"INSERT INTO turns (session_id, role, content, chars) VALUES {rows}",  # noqa: S608 - placeholders only
            values,
        )


@attrs.frozen
class InboxEntry:
    """An update written to the inbox, with the routed message it became."""

    update_id: int
    """Telegram's update id (the dedup key)."""
    key: ThreadKey
    """Its thread."""
    message_id: int
    """The message's id in its chat."""
    payload: dict[str, Any]
    """The routed message as plain data (see ``gateway.telegram.routing``)."""


class Store:
    """Implements the thread actor's ``ThreadStore``, the chat agent's ``SessionHistory`` and
    the credential pool's ``PoolStateStore``.

    ``on_outcome`` is told every outcome recorded (the gateway counts them for ``/metrics``).
    """

    def __init__(
        self, path: str | Path, on_outcome: Callable[[Outcome], None] = lambda _: None
    ) -> None:
        self._path = Path(path)
        self._on_outcome = on_outcome
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            self._db.executescript(SCHEMA)
            migrate(self._db)
            self._db.executescript(TRIGGERS)
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailableError(f"cannot open {self._path}: {error}") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        # A checkpoint may fsync: it runs in a worker thread (checkpoint()), not in a commit
        # on the event loop.
        db.execute("PRAGMA wal_autocheckpoint=0")
        return db

    def close(self) -> None:
        """Close the file (every write was committed when it returned)."""
        self._db.close()

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """A small read, on the loop's thread (see the module docstring)."""
        try:
            return func(self._db)
        except sqlite3.Error as error:
            raise StoreUnavailableError(f"{self._path}: {error}") from None

    async def _write(self, func: Callable[[sqlite3.Connection], T], *, atomic: bool = False) -> T:
        """A small write, on the loop's thread; ``atomic`` when ``func`` runs several
        statements."""
        db = self._db
        try:
            if not atomic:
                return func(db)
            with transaction(db):
                return func(db)
        except sqlite3.Error as error:
            raise StoreUnavailableError(f"{self._path}: {error}") from None

    async def _read(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """A read that may be large, in a worker thread on a connection of its own."""

        def read() -> T:
            db = sqlite3.connect(self._path, timeout=5)
            try:
                return func(db)
            finally:
                db.close()

        try:
            return await anyio.to_thread.run_sync(read)
        except sqlite3.Error as error:
            raise StoreUnavailableError(f"{self._path}: {error}") from None

    async def checkpoint(self) -> tuple[int, int]:
        """Copy the write-ahead log into the database file, in a worker thread; never waits
        for readers or writers (a passive checkpoint does what it can now). Returns the
        log's size and how much of it is now in the database file, in pages."""

        def run(db: sqlite3.Connection) -> tuple[int, int]:
            _, logged, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(logged), int(copied)

        return await self._read(run)

    # -- inbox ---------------------------------------------------------------------------

    async def accept(self, entry: InboxEntry) -> bool:
        """Write an update to the inbox; ``False`` if it was already there (a redelivery)."""

        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT OR IGNORE INTO inbox (update_id, chat_id, thread_key, message_id,"
                " payload, received_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.update_id,
                    entry.key.chat_id,
                    key_text(entry.key),
                    entry.message_id,
                    json.dumps(entry.payload),
                    time.time(),
                ),
            )
            return cursor.rowcount == 1

        return await self._write(write)

    async def unanswered(self) -> list[InboxEntry]:
        """Inbox entries without a final outcome, oldest first (replayed at start)."""

        def read(db: sqlite3.Connection) -> list[InboxEntry]:
            rows = db.execute(
                "SELECT update_id, chat_id, thread_key, message_id, payload FROM inbox"
                " WHERE outcome IS NULL ORDER BY update_id"
            ).fetchall()
            entries = []
            for update_id, chat_id, thread_key, message_id, payload in rows:
                _, _, thread = thread_key.partition(":")
                key = ThreadKey(chat_id, int(thread) if thread else None)
                entries.append(InboxEntry(update_id, key, message_id, json.loads(payload)))
            return entries

        return await self._read(read)

    async def last_update_id(self) -> int | None:
        def read(db: sqlite3.Connection) -> int | None:
            row = db.execute("SELECT MAX(update_id) FROM inbox").fetchone()
            return None if row is None or row[0] is None else int(row[0])

        return await self._run(read)

    # -- ThreadStore -----------------------------------------------------------------------

    async def load(self, key: ThreadKey) -> ThreadRecord | None:
        def read(db: sqlite3.Connection) -> ThreadRecord | None:
            row = db.execute(
                "SELECT record FROM threads WHERE thread_key = ?", (key_text(key),)
            ).fetchone()
            return None if row is None else record_from_json(row[0])

        return await self._run(read)

    async def save(
        self,
        key: ThreadKey,
        record: ThreadRecord,
        concluded: Sequence[Concluded] = (),
        exchange: Exchange | None = None,
    ) -> None:
        """Replace the record, record the outcomes in ``concluded`` and append ``exchange``
        to its session's history: one transaction."""

        def write(db: sqlite3.Connection) -> None:
            upsert = (
                "INSERT INTO threads (thread_key, record, session_id) VALUES (?, ?, ?)"
                " ON CONFLICT (thread_key) DO UPDATE"
                " SET record = excluded.record, session_id = excluded.session_id"
            )
            db.execute(upsert, (key_text(key), record_to_json(record), record.session_id))
            if concluded:
                _insert_outcomes(db, key, concluded)
            if exchange is not None:
                _append_exchange(db, exchange)

        await self._write(write, atomic=bool(concluded) or exchange is not None)
        for outcome in concluded:
            self._on_outcome(outcome.outcome)

    async def record_outcome(
        self, key: ThreadKey, message_id: int, outcome: Outcome, detail: str
    ) -> None:
        await self._write(
            lambda db: _insert_outcomes(db, key, [Concluded(message_id, outcome, detail)])
        )
        self._on_outcome(outcome)

    async def has_final_outcome(self, key: ThreadKey, message_id: int) -> bool:
        """Whether a final outcome of ``message_id`` in ``key``'s thread is recorded."""

        def read(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT 1 FROM outcomes WHERE thread_key = ? AND message_id = ?"  # noqa: S608 - constants
                f" AND outcome IN ({FINAL}) LIMIT 1",
                (key_text(key), message_id),
            ).fetchone()
            return row is not None

        return await self._run(read)

    async def outcomes(self, key: ThreadKey) -> list[tuple[int, str]]:
        """Every recorded outcome of a thread, in order (for tests and operators)."""

        def read(db: sqlite3.Connection) -> list[tuple[int, str]]:
            rows = db.execute(
                "SELECT message_id, outcome FROM outcomes WHERE thread_key = ? ORDER BY rowid",
                (key_text(key),),
            ).fetchall()
            return [(int(m), str(o)) for m, o in rows]

        return await self._read(read)

    async def sessions(self, key: ThreadKey) -> list[tuple[str, float]]:
        """Every session the thread had, oldest first, with when it began (wall clock)."""

        def read(db: sqlite3.Connection) -> list[tuple[str, float]]:
            rows = db.execute(
                "SELECT session_id, created_at FROM sessions WHERE thread_key = ?"
                " ORDER BY created_at, rowid",
                (key_text(key),),
            ).fetchall()
            return [(str(session), float(at)) for session, at in rows]

        return await self._read(read)

    # -- SessionHistory --------------------------------------------------------------------

    async def recent(self, session_id: str, budget: int) -> Sequence[Turn]:
        """The newest turns that fit in ``budget`` characters (and at most ``RECENT_TURNS``):
        a bounded read, so it runs on the loop's thread like the other small statements."""

        def read(db: sqlite3.Connection) -> list[Turn]:
            kept: list[Turn] = []
            rows = db.execute(  # newest first; stepped lazily, so the read stops at the budget
                "SELECT role, content, chars FROM turns WHERE session_id = ?"
                " ORDER BY id DESC LIMIT ?",
                (session_id, RECENT_TURNS),
            )
            left = budget
            for role, content, chars in rows:
                left -= chars
                if left < 0:
                    break
                kept.append(Turn(role, content))
            rows.close()
            kept.reverse()
            return kept

        return await self._run(read)

    # -- PoolStateStore (synchronous, small) -----------------------------------------------

    def load_pool(self, name: str) -> Sequence[SavedKeyState]:
        rows = self._db.execute("SELECT state FROM pool_state WHERE pool = ?", (name,))
        return [SavedKeyState(**json.loads(state)) for (state,) in rows.fetchall()]

    def save_pool(self, name: str, states: Sequence[SavedKeyState]) -> None:
        with transaction(self._db):
            self._db.executemany(
                "INSERT INTO pool_state (pool, label, state) VALUES (?, ?, ?)"
                " ON CONFLICT (pool, label) DO UPDATE SET state = excluded.state",
                [(name, s.label, json.dumps(attrs.asdict(s))) for s in states],
            )
