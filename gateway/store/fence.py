"""The store's fence: what makes a thread's writes conditional on holding its shard.

Rules:

* Every write a thread makes (its record, an outcome, its history, the inbox entry a final
  outcome closes) calls :meth:`Fence.check` for the thread's shard first, in the same
  transaction. A write it refuses raises :class:`~gateway.exceptions.ShardMovedError` and
  is rolled back alone: nothing of it was written.
* Writes that are not a thread's (an inbox entry accepted, pairing, usage counts, pool
  states) are not fenced: any replica may make them.
* One gateway process on SQLite has no fence (:data:`NO_FENCE`): it holds every shard.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    """What a statement returns, on either database (``sqlite3.Cursor``, or the
    PostgreSQL adapter's)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def close(self) -> None: ...


class Connection(Protocol):
    """A connection as the store's statements use it, on either database: ``?``
    placeholders, one statement per ``execute``."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


class Fence(Protocol):
    """Says whether this replica may still write a shard."""

    def check(self, db: Connection, shard: int) -> None:
        """Raise :class:`~gateway.exceptions.ShardMovedError` unless this replica holds
        ``shard`` at the epoch it took it with; run inside the write's transaction (on
        PostgreSQL it locks the lease row until the write commits, so a takeover waits
        for it)."""


class _NoFence:
    """Every shard is this process's own."""

    def check(self, db: Connection, shard: int) -> None:
        return None


NO_FENCE: Fence = _NoFence()
"""The fence of one gateway process on SQLite: nothing is refused."""
