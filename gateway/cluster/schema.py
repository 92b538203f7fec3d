"""The lease tables, on either database, and :func:`ensure`, which makes them.

Rules:

* ``replicas``: one row per replica that heartbeats (its id, the process that holds the id
  and when it started, its last heartbeat, in the database's wall clock). A replica is live
  while its heartbeat is younger than the lease TTL; one that leaves deletes its row.
* ``shard_leases``: one row per shard, made once and never deleted: its owner (``''`` when
  free), its epoch (bumped by every acquisition, never lowered) and when the lease expires
  (the database's wall clock).
* ``named_leases``: the same for leases of one role in the cluster (``"poller"``), a row
  made by the first replica that asks for it.
* :func:`ensure` is idempotent and safe when several replicas run it at once (PostgreSQL:
  under a transaction-scoped advisory lock; SQLite: the one writer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, TypeVar

from gateway.cluster.shards import SHARDS
from gateway.store.fence import Connection

T = TypeVar("T")

Dialect = Literal["sqlite", "postgresql"]
"""The two databases the store runs on (``Store.dialect``)."""

ADVISORY_LOCK = 0x7467_6C65  # "tgle": the lease tables' creation, one replica at a time


class LeaseStore(Protocol):
    """What the leases need of the store (``gateway.store``, on either database): reads
    and atomic writes of functions taking a :class:`~gateway.store.fence.Connection`."""

    async def write(self, func: Callable[[Connection], T], *, atomic: bool = False) -> T: ...

    async def read(self, func: Callable[[Connection], T]) -> T: ...


def statements(dialect: Dialect) -> list[str]:
    """The tables' DDL, one statement each, in ``dialect``."""
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        "CREATE TABLE IF NOT EXISTS replicas ("
        " replica_id TEXT PRIMARY KEY,"
        " incarnation TEXT NOT NULL,"
        f" started_at {real} NOT NULL,"
        f" heartbeat_at {real} NOT NULL,"
        " threads INTEGER NOT NULL DEFAULT 0)",  # its live threads, for the status
        "CREATE TABLE IF NOT EXISTS shard_leases ("
        " shard INTEGER PRIMARY KEY,"
        " owner TEXT NOT NULL DEFAULT '',"
        " epoch BIGINT NOT NULL DEFAULT 0,"
        f" expires_at {real} NOT NULL DEFAULT 0)",
        "CREATE TABLE IF NOT EXISTS named_leases ("
        " name TEXT PRIMARY KEY,"
        " owner TEXT NOT NULL DEFAULT '',"
        " epoch BIGINT NOT NULL DEFAULT 0,"
        f" expires_at {real} NOT NULL DEFAULT 0)",
    ]


def create(db: Connection, dialect: Dialect, shards: int = SHARDS) -> None:
    """Make the tables and the shards' rows (run in one transaction)."""
    if dialect == "postgresql":
        db.execute("SELECT pg_advisory_xact_lock(?)", (ADVISORY_LOCK,))
    for statement in statements(dialect):
        db.execute(statement)
    rows = ", ".join(["(?)"] * shards)
    db.execute(
        f"INSERT INTO shard_leases (shard) VALUES {rows} ON CONFLICT (shard) DO NOTHING",  # noqa: S608 - placeholders only
        tuple(range(shards)),
    )


async def ensure(store: LeaseStore, dialect: Dialect, shards: int = SHARDS) -> None:
    """Make the lease tables and the shards' rows if they are missing."""
    await store.write(lambda db: create(db, dialect, shards), atomic=True)
