"""The store: durable inbox, thread records, outcomes, session histories, pool state.

On SQLite, one file (WAL mode, ``synchronous=NORMAL``: a commit appends to the WAL without
an fsync); on PostgreSQL (``store.url``), one database that replicas share
(``gateway.store.postgres``, ``gateway.store.pg_schema``). One class, the same statements on
both (``?`` placeholders, portable SQL), the same rules. No statement runs on the event
loop's thread (``gateway.store.connections``): writes go to the one writer connection,
batched into worker-thread hops (under load, the writes queued meanwhile share one hop and
one commit, each in a savepoint of its own); reads run in worker threads on reader
connections (WAL lets SQLite's read while the writer writes). A lock held by another
process thus delays the writes waiting for it (up to ``busy_timeout``, then
:class:`StoreUnavailableError`), never the loop. Opening (schema, migrations) is the one
exception: the constructor runs before the gateway serves anything.

Rules:

* Inbox rows, thread records and outcomes are committed before the call returns.
* A session's history is written only by ``save``, in the transaction of the thread record
  that concludes the answered run it belongs to: a run's history and its conclusion land
  together or not at all, and never in another thread's transaction.
* Every failure of the database is a :class:`StoreUnavailableError`, never a raw
  ``sqlite3.Error`` or ``psycopg.Error`` (and never with the URL's password).
* A thread's writes (``save``, ``record_outcome``, ``save_activation``) first ask the fence
  (``gateway.store.fence``) about the thread's shard, in their own transaction: a refusal
  (:class:`~gateway.exceptions.ShardMovedError`) reaches the caller as it is, and nothing
  of the write was written.
* Every inbox entry carries its chat's shard (``gateway.cluster.shards``), so a replica
  reads only the unanswered entries of the shards it holds (``unanswered(shards=)``).
* What is old and done is pruned by ``prune`` (``gateway.store.retention``): never an inbox
  entry still unanswered, never a thread record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs

from actors.thread.records import Concluded, Exchange, Outcome, ThreadKey, ThreadRecord, Turn
from actors.thread.settings import Activation
from gateway.cluster.shards import shard_of
from gateway.store.codec import (
    key_text,
    media_from_json,
    record_from_json,
    record_to_json,
)
from gateway.store.entries import InboxEntry, Pending, StoreStatistics, opened, read_unanswered
from gateway.store.fence import NO_FENCE, Connection, Fence
from gateway.store.retention import Pruned, Retention, prune
from gateway.store.schema import FINAL
from gateway.store.writes import append_exchange, insert_outcomes
from providers.pool import SavedKeyState

__all__ = ["RECENT_TURNS", "InboxEntry", "Pending", "Store", "StoreStatistics"]
T = TypeVar("T")
WALL_CLOCK = "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
"""PostgreSQL's wall clock, in seconds: what leases are compared with (replicas never
compare their own clocks)."""
RECENT_TURNS = 500
"""Turns of a session read for one answer at most, whatever the character budget."""


class Store:
    """Implements the thread actor's ``ThreadStore``, the chat agent's ``SessionHistory`` and
    the credential pool's ``PoolStateStore``.

    Args:
        location: the SQLite file (created with its folder if missing), or a PostgreSQL
            database's URL (``postgresql://...``; its schema is made or migrated).
        on_outcome: told every outcome recorded, with its thread (the gateway counts them for
            ``/metrics`` and shows the last ones on the status page).
        clock: the wall clock of the times written (received, concluded, last used).
        busy_timeout: seconds a statement waits for a lock another process holds (SQLite).
        fence: what a thread's writes ask first (``NO_FENCE``: one process holds every
            shard).
    """

    def __init__(
        self,
        location: str | Path,
        on_outcome: Callable[[ThreadKey, Concluded], None] = lambda _key, _concluded: None,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
        fence: Fence = NO_FENCE,
    ) -> None:
        self._on_outcome = on_outcome
        self._clock = clock
        self._fence = fence
        self._fenced = fence is not NO_FENCE
        self._writer, self._readers, dialect = opened(location, busy_timeout)
        self._dialect = dialect.name

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]:
        """The database: ``sqlite`` (a file of one process) or ``postgresql``."""
        return "postgresql" if self._dialect == "postgresql" else "sqlite"

    @property
    def shared(self) -> bool:
        """Whether replicas may share this store (PostgreSQL)."""
        return self._dialect == "postgresql"

    async def now(self) -> float:
        """The database's wall clock (PostgreSQL's ``clock_timestamp()``; on SQLite the
        store's clock): what leases are compared with, so replicas never compare theirs."""
        if not self.shared:
            return self._clock()

        def read(db: Connection) -> float:
            return float(db.execute(WALL_CLOCK).fetchone()[0])

        return await self._read(read)

    def close(self) -> None:
        """Close the file (every write was committed when it returned)."""
        self._writer.close()
        self._readers.close()

    def statistics(self) -> StoreStatistics:
        return StoreStatistics(self._writer.writes, self._writer.hops, self._readers.reads)

    async def _write(self, func: Callable[[Connection], T], *, atomic: bool = False) -> T:
        """A write, on the writer connection; ``atomic`` when ``func`` runs several
        statements."""
        return await self._writer.run(func, atomic=atomic)

    async def _read(self, func: Callable[[Connection], T]) -> T:
        """A read, in a worker thread on a reader connection."""
        return await self._readers.run(func)

    async def write(self, func: Callable[[Connection], T], *, atomic: bool = False) -> T:
        """A write of one of the store's feature modules (pairing, usage), as ``_write``."""
        return await self._writer.run(func, atomic=atomic)

    async def read(self, func: Callable[[Connection], T]) -> T:
        """A read of one of the store's feature modules, as ``_read``."""
        return await self._readers.run(func)

    async def checkpoint(self, *, truncate: bool = False) -> tuple[int, int]:
        """Copy the write-ahead log into the database file, in a worker thread. Passive (the
        default) never waits for readers or writers: it does what it can now. ``truncate``
        waits for them (up to ``busy_timeout``) and then empties the log file. Returns the
        log's size and how much of it is now in the database file, in pages."""
        if self.shared:
            return 0, 0  # PostgreSQL checkpoints by itself
        mode = "TRUNCATE" if truncate else "PASSIVE"

        def run(db: Connection) -> tuple[int, int]:
            _, logged, copied = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            return int(logged), int(copied)

        return await self._read(run)

    async def prune(self, retention: Retention, now: float) -> Pruned:
        """Delete what ``retention`` no longer keeps at wall-clock time ``now`` (in small
        transactions, so writes go on between them), then truncate the write-ahead log."""
        pruned = await prune(self._read, self._write, retention, now)
        if not self.shared:
            await self.checkpoint(truncate=True)
        return pruned

    # -- inbox ---------------------------------------------------------------------------

    async def accept(self, entry: InboxEntry) -> bool:
        """Write an update to the inbox; ``False`` if it was already there (a redelivery)."""

        def write(db: Connection) -> bool:
            cursor = db.execute(
                "INSERT INTO inbox (update_id, chat_id, thread_key, message_id, payload,"
                " received_at, shard) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (update_id) DO NOTHING",
                (
                    entry.update_id,
                    entry.key.chat_id,
                    key_text(entry.key),
                    entry.message_id,
                    json.dumps(entry.payload),
                    self._clock(),
                    shard_of(entry.key.chat_id),
                ),
            )
            return cursor.rowcount == 1

        return await self._write(write)

    async def unanswered(self, shards: Collection[int] | None = None) -> list[InboxEntry]:
        """Inbox entries without a final outcome, oldest first; only those of ``shards`` when
        given (a replica's)."""
        return (await self._unanswered(shards, records=False)).entries

    async def pending(self, shards: Collection[int] | None = None) -> Pending:
        """What a replay needs, in one read (one statement): the unanswered entries (as
        ``unanswered``) and the message ids their threads' records hold."""
        return await self._unanswered(shards, records=True)

    async def _unanswered(self, shards: Collection[int] | None, *, records: bool) -> Pending:
        if shards is not None and not shards:
            return Pending([], {})
        return await self._read(partial(read_unanswered, shards=shards, records=records))

    async def join_album(
        self, key: ThreadKey, first: int, payload: dict[str, Any], others: Sequence[int]
    ) -> None:
        """An album becomes one inbox entry, in one transaction: ``first``'s entry holds the
        whole album (``payload``), and the entries of ``others`` are marked part of it (they
        are concluded with it and are not replayed on their own)."""

        def write(db: Connection) -> None:
            db.execute(
                "UPDATE inbox SET payload = ? WHERE chat_id = ? AND message_id = ?",
                (json.dumps(payload), key.chat_id, first),
            )
            for other in others:
                db.execute(
                    "UPDATE inbox SET album_of = ? WHERE chat_id = ? AND message_id = ?",
                    (first, key.chat_id, other),
                )

        await self._write(write, atomic=True)

    async def last_update_id(self) -> int | None:
        def read(db: Connection) -> int | None:
            row = db.execute("SELECT MAX(update_id) FROM inbox").fetchone()
            return None if row is None or row[0] is None else int(row[0])

        return await self._read(read)

    # -- ThreadStore -----------------------------------------------------------------------

    async def load(self, key: ThreadKey) -> ThreadRecord | None:
        def read(db: Connection) -> ThreadRecord | None:
            row = db.execute(
                "SELECT record FROM threads WHERE thread_key = ?", (key_text(key),)
            ).fetchone()
            return None if row is None else record_from_json(row[0])

        return await self._read(read)

    async def save(
        self,
        key: ThreadKey,
        record: ThreadRecord,
        concluded: Sequence[Concluded] = (),
        exchange: Exchange | None = None,
    ) -> None:
        """Replace the record, record the outcomes in ``concluded`` and append ``exchange``
        to its session's history: one transaction."""

        at = self._clock()

        def write(db: Connection) -> None:
            self._fence.check(db, shard_of(key.chat_id))
            upsert = (
                "INSERT INTO threads (thread_key, record, session_id) VALUES (?, ?, ?)"
                " ON CONFLICT (thread_key) DO UPDATE"
                " SET record = excluded.record, session_id = excluded.session_id"
            )
            db.execute(upsert, (key_text(key), record_to_json(record), record.session_id))
            if concluded:
                insert_outcomes(db, key, concluded, at)
            if exchange is not None:
                append_exchange(db, exchange, at)

        await self._write(write, atomic=self._fenced or bool(concluded) or exchange is not None)
        for outcome in concluded:
            self._on_outcome(key, outcome)

    async def record_outcome(
        self, key: ThreadKey, message_id: int, outcome: Outcome, detail: str, *, fenced: bool = True
    ) -> None:
        """Record an outcome; ``fenced=False`` for the intake's own conclusion of an update it
        received (``not-addressed``), which any replica may write."""
        at, concluded = self._clock(), [Concluded(message_id, outcome, detail)]

        def write(db: Connection) -> None:
            if fenced:
                self._fence.check(db, shard_of(key.chat_id))
            insert_outcomes(db, key, concluded, at)

        await self._write(write, atomic=self._fenced and fenced)
        self._on_outcome(key, concluded[0])

    async def has_final_outcome(self, key: ThreadKey, message_id: int) -> bool:
        """Whether a final outcome of ``message_id`` in ``key``'s thread is recorded."""

        def read(db: Connection) -> bool:
            row = db.execute(
                "SELECT 1 FROM outcomes WHERE thread_key = ? AND message_id = ?"  # noqa: S608 - constants
                f" AND outcome IN ({FINAL}) LIMIT 1",
                (key_text(key), message_id),
            ).fetchone()
            return row is not None

        return await self._read(read)

    async def outcomes(self, key: ThreadKey) -> list[tuple[int, str]]:
        """Every recorded outcome of a thread, in order (for tests and operators)."""

        def read(db: Connection) -> list[tuple[int, str]]:
            rows = db.execute(
                "SELECT message_id, outcome FROM outcomes WHERE thread_key = ? ORDER BY rowid",
                (key_text(key),),
            ).fetchall()
            return [(int(m), str(o)) for m, o in rows]

        return await self._read(read)

    async def sessions(self, key: ThreadKey) -> list[tuple[str, float]]:
        """Every session the thread had, oldest first, with when it began (wall clock)."""

        def read(db: Connection) -> list[tuple[str, float]]:
            rows = db.execute(
                "SELECT session_id, created_at FROM sessions WHERE thread_key = ?"
                " ORDER BY created_at, rowid",
                (key_text(key),),
            ).fetchall()
            return [(str(session), float(at)) for session, at in rows]

        return await self._read(read)

    # -- SessionHistory --------------------------------------------------------------------

    async def recent(self, session_id: str, budget: int) -> Sequence[Turn]:
        """The newest turns that fit in ``budget`` characters (and at most ``RECENT_TURNS``)."""

        def read(db: Connection) -> list[Turn]:
            kept: list[Turn] = []
            rows = db.execute(  # newest first; stepped lazily, so the read stops at the budget
                "SELECT role, content, chars, media FROM turns WHERE session_id = ?"
                " ORDER BY id DESC LIMIT ?",
                (session_id, RECENT_TURNS),
            )
            left = budget
            for role, content, chars, media in rows:
                left -= chars
                if left < 0:
                    break
                kept.append(Turn(role, content, media_from_json(media)))
            rows.close()
            kept.reverse()
            return kept

        return await self._read(read)

    async def load_activation(self, conversation: ThreadKey) -> Activation | None:
        def read(db: Connection) -> Activation | None:
            row = db.execute(
                "SELECT mode FROM activations WHERE conversation = ?",
                (key_text(conversation.conversation),),
            ).fetchone()
            return None if row is None else Activation(row[0])

        return await self._read(read)

    async def save_activation(self, conversation: ThreadKey, activation: Activation) -> None:
        def write(db: Connection) -> None:
            self._fence.check(db, shard_of(conversation.chat_id))
            db.execute(
                "INSERT INTO activations (conversation, mode) VALUES (?, ?)"
                " ON CONFLICT (conversation) DO UPDATE SET mode = excluded.mode",
                (key_text(conversation.conversation), activation.value),
            )

        await self._write(write, atomic=self._fenced)

    # -- PoolStateStore --------------------------------------------------------------------

    async def load_pool(self, name: str) -> Sequence[SavedKeyState]:
        def read(db: Connection) -> list[SavedKeyState]:
            rows = db.execute("SELECT state FROM pool_state WHERE pool = ?", (name,)).fetchall()
            return [SavedKeyState(**json.loads(state)) for (state,) in rows]

        return await self._read(read)

    async def save_pool(self, name: str, states: Sequence[SavedKeyState]) -> None:
        rows = [(name, s.label, json.dumps(attrs.asdict(s))) for s in states]

        def write(db: Connection) -> None:
            for row in rows:
                db.execute(
                    "INSERT INTO pool_state (pool, label, state) VALUES (?, ?, ?)"
                    " ON CONFLICT (pool, label) DO UPDATE SET state = excluded.state",
                    row,
                )

        await self._write(write, atomic=True)
