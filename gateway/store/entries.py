"""The store's records (an inbox entry, the writer's statistics), and its connections
opened on either database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from actors.thread.records import ThreadKey
from gateway.store.connections import Dialect, Readers, Writer, connect, sqlite_dialect
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
class StoreStatistics:
    """The store's writer since it opened."""

    writes: int
    """Writes run on the writer connection."""
    hops: int
    """Worker-thread hops they took (writes queued together share one)."""


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
