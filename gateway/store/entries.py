"""The store's records (an inbox entry, what a replay reads, the connections' statistics),
the read of the unanswered inbox, and the store's connections opened on either database."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import attrs

from actors.thread.records import ThreadKey
from gateway.store.codec import held_ids
from gateway.store.connections import Dialect, Readers, Writer, connect, sqlite_dialect
from gateway.store.fence import Connection
from gateway.store.pg_schema import open_database
from gateway.store.postgres import PgConnection, is_url, postgres_dialect
from gateway.store.schema import open_file


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
    received_at: float = attrs.field(default=0.0, eq=False)
    """When it was written (wall clock of the replica that received it; 0: not read). Not
    part of an entry's equality: the same update is the same entry."""


@attrs.frozen
class Pending:
    """What a replay needs (``Store.pending``): the unanswered inbox entries, and what their
    threads' records hold."""

    entries: list[InboxEntry]
    """Inbox entries without a final outcome, oldest first."""
    held: Mapping[ThreadKey, frozenset[int]]
    """For each of their threads that has a record: the message ids it holds (in flight or
    queued); a thread without a record is not in it."""

    def is_held(self, entry: InboxEntry) -> bool:
        """Whether ``entry``'s thread record holds its message (starting the thread resumes
        it; it is not delivered again)."""
        return entry.message_id in self.held.get(entry.key, ())


@attrs.frozen
class StoreStatistics:
    """The store's connections since it opened."""

    writes: int
    """Writes run on the writer connection."""
    hops: int
    """Worker-thread hops they took (writes queued together share one)."""
    reads: int = 0
    """Reads run on the reader connections (a worker-thread hop each)."""


def read_unanswered(db: Connection, *, shards: Collection[int] | None, records: bool) -> Pending:
    """The inbox entries without a final outcome (not an album's later item), oldest first,
    of ``shards`` when given; with ``records``, what their threads' records hold, read in the
    same statement (a join: one snapshot, and one round trip on PostgreSQL)."""
    chosen = tuple(sorted(shards)) if shards is not None else ()
    where = f" AND i.shard IN ({', '.join('?' * len(chosen))})" if shards is not None else ""
    record, join = (", NULL", "")
    if records:
        record, join = (", t.record", " LEFT JOIN threads t ON t.thread_key = i.thread_key")
    rows = db.execute(
        f"SELECT i.update_id, i.thread_key, i.message_id, i.payload, i.received_at{record}"  # noqa: S608 - placeholders only
        f" FROM inbox i{join}"
        f" WHERE i.outcome IS NULL AND i.album_of IS NULL{where} ORDER BY i.update_id",
        chosen,
    ).fetchall()
    entries = []
    held: dict[ThreadKey, frozenset[int]] = {}
    for update_id, thread_key, message_id, payload, at, text in rows:
        key = ThreadKey.parse(thread_key)
        entries.append(InboxEntry(update_id, key, message_id, json.loads(payload), float(at)))
        if text is not None and key not in held:  # a thread's record, once
            held[key] = held_ids(text)
    return Pending(entries, held)


def opened(location: str | Path, busy_timeout: float) -> tuple[Writer, Readers, Dialect]:
    """The writer and the readers of the store at ``location`` (a PostgreSQL URL, else a
    SQLite file's path), its schema made or migrated first.

    Raises:
        StoreUnavailableError: it cannot be opened.
    """
    if isinstance(location, str) and is_url(location):
        url = location
        open_database(url)
        dialect = postgres_dialect(url)
        return (
            Writer(PgConnection(url), dialect),
            Readers(lambda: PgConnection(url), dialect),
            dialect,
        )
    path = Path(location)
    dialect = sqlite_dialect(path)
    writer = Writer(open_file(path, busy_timeout), dialect)
    return writer, Readers(lambda: connect(path, busy_timeout), dialect), dialect
