"""The lease statements: atomic compare-and-set on the lease rows, on either database.

Every function takes a :class:`~gateway.store.fence.Connection` (``?`` placeholders,
portable SQL) and is run by the store, inside the caller's transaction
(``Store.write(func, atomic=True)``).

Rules:

* A shard is taken only when it is free (owner ``''``) or its lease expired, and taking it
  bumps its epoch (``epoch = epoch + 1``): whoever held it before, even under the same
  replica id, holds a stale epoch from then on and its fenced writes are refused.
* A renewal or a release names the epoch it holds: it matches only while nobody took the
  shard since. A renewal that does not match means the shard was lost.
* A release frees the row (owner ``''``, expired) and keeps its epoch: the next taker bumps
  it.
* The ``_all`` forms act on many shards in one statement (a round is a few statements
  whatever the shards held, not one per shard: a round trip each on PostgreSQL).
* Times are the database's wall clock (``Store.now()``), passed in as ``now``: replicas
  never compare their own clocks.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import attrs

from gateway.store.fence import Connection


@attrs.frozen
class Lease:
    """A lease row as the database holds it (a shard's, or a named one's)."""

    key: int | str
    """The shard, or the named lease's name."""
    owner: str
    """The replica that holds it; ``''`` when free."""
    epoch: int
    """Bumped by every acquisition."""
    expires_at: float
    """When it expires (the database's wall clock)."""

    def free(self, now: float) -> bool:
        """Whether anyone may take it at ``now``: nobody holds it, or the lease expired."""
        return not self.owner or self.expires_at <= now


# -- replicas ----------------------------------------------------------------------------


def heartbeat(db: Connection, replica: str, incarnation: str, started: float, now: float) -> bool:
    """Say ``replica`` is live at ``now``, as the process ``incarnation`` that started at
    ``started``; ``False`` if a process that started later (or at once, with a greater
    token) holds the replica id: this one is superseded, and nothing was written."""
    db.execute(
        "INSERT INTO replicas (replica_id, incarnation, started_at, heartbeat_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (replica_id) DO UPDATE SET"
        " incarnation = excluded.incarnation, started_at = excluded.started_at,"
        " heartbeat_at = excluded.heartbeat_at"
        " WHERE replicas.started_at < excluded.started_at OR (replicas.started_at ="
        " excluded.started_at AND replicas.incarnation <= excluded.incarnation)",
        (replica, incarnation, started, now),
    )
    row = db.execute("SELECT incarnation FROM replicas WHERE replica_id = ?", (replica,)).fetchone()
    return row is not None and str(row[0]) == incarnation


def forget_replica(db: Connection, replica: str, incarnation: str) -> None:
    """Remove ``replica``'s heartbeat (it left gracefully), if it is still this process's."""
    db.execute(
        "DELETE FROM replicas WHERE replica_id = ? AND incarnation = ?", (replica, incarnation)
    )


def live_replicas(db: Connection, now: float, ttl: float) -> tuple[str, ...]:
    """The replicas whose heartbeat is younger than ``ttl`` at ``now``, sorted (in Python:
    the databases' collations differ)."""
    rows = db.execute(
        "SELECT replica_id FROM replicas WHERE heartbeat_at > ?", (now - ttl,)
    ).fetchall()
    return tuple(sorted(str(row[0]) for row in rows))


# -- shards ------------------------------------------------------------------------------


def shard_leases(db: Connection) -> list[Lease]:
    """Every shard's row, by shard."""
    rows = db.execute(
        "SELECT shard, owner, epoch, expires_at FROM shard_leases ORDER BY shard"
    ).fetchall()
    return [Lease(int(s), str(o), int(e), float(x)) for s, o, e, x in rows]


def acquire(db: Connection, shard: int, replica: str, now: float, ttl: float) -> int | None:
    """Take ``shard`` for ``replica`` if it is free or expired at ``now``; its new epoch, or
    ``None`` if somebody holds it."""
    return acquire_all(db, (shard,), replica, now, ttl).get(shard)


def acquire_all(
    db: Connection, shards: Collection[int], replica: str, now: float, ttl: float
) -> dict[int, int]:
    """:func:`acquire` for each of ``shards`` in one statement: the new epoch of each taken."""
    if not shards:
        return {}
    marks = ", ".join("?" * len(shards))
    rows = db.execute(
        "UPDATE shard_leases SET owner = ?, epoch = epoch + 1, expires_at = ?"  # noqa: S608 - placeholders only
        f" WHERE shard IN ({marks}) AND (owner = '' OR expires_at <= ?) RETURNING shard, epoch",
        (replica, now + ttl, *shards, now),
    ).fetchall()  # to the end: the statement is done before the next one runs
    return {int(shard): int(epoch) for shard, epoch in rows}


def renew(db: Connection, shard: int, replica: str, epoch: int, now: float, ttl: float) -> bool:
    """Extend ``replica``'s lease on ``shard`` at ``epoch`` to ``now + ttl``; ``False`` if
    the shard is no longer held at that epoch (lost)."""
    return shard in renew_all(db, {shard: epoch}, replica, now, ttl)


def renew_all(
    db: Connection, held: Mapping[int, int], replica: str, now: float, ttl: float
) -> set[int]:
    """:func:`renew` for each shard of ``held`` (shard to epoch) in one statement: the shards
    still held."""
    return _update_held(db, "expires_at = ?", (now + ttl,), held, replica)


def release(db: Connection, shard: int, replica: str, epoch: int) -> bool:
    """Free ``shard`` if ``replica`` still holds it at ``epoch``; ``False`` if it did not."""
    return shard in release_all(db, {shard: epoch}, replica)


def release_all(db: Connection, held: Mapping[int, int], replica: str) -> set[int]:
    """:func:`release` for each shard of ``held`` (shard to epoch) in one statement: the shards
    freed."""
    return _update_held(db, "owner = '', expires_at = 0", (), held, replica)


def _update_held(
    db: Connection,
    change: str,
    values: tuple[object, ...],
    held: Mapping[int, int],
    replica: str,
) -> set[int]:
    """Apply ``change`` to the rows ``replica`` holds at the epochs of ``held``; the shards it
    changed. (An ``OR`` of pairs: both databases type its parameters from the columns.)"""
    if not held:
        return set()
    pairs = " OR ".join(["(shard = ? AND epoch = ?)"] * len(held))
    rows = db.execute(
        f"UPDATE shard_leases SET {change} WHERE owner = ? AND ({pairs}) RETURNING shard",  # noqa: S608 - constants and placeholders
        (*values, replica, *(v for pair in held.items() for v in pair)),
    ).fetchall()  # to the end: the statement is done before the next one runs
    return {int(row[0]) for row in rows}


_HOLDER = "SELECT owner, epoch FROM shard_leases WHERE shard = ?"
_HOLDER_LOCKED = _HOLDER + " FOR SHARE"


def holder(db: Connection, shard: int, *, lock: bool = False) -> tuple[str, int]:
    """``shard``'s owner and epoch now; ``lock`` (PostgreSQL) keeps the row from changing
    until the transaction ends (``FOR SHARE``: a takeover waits for the caller's write)."""
    row = db.execute(_HOLDER_LOCKED if lock else _HOLDER, (shard,)).fetchone()
    return ("", 0) if row is None else (str(row[0]), int(row[1]))


# -- named leases ------------------------------------------------------------------------


def named_lease(db: Connection, name: str) -> Lease | None:
    """The named lease's row, if anyone ever asked for it."""
    row = db.execute(
        "SELECT name, owner, epoch, expires_at FROM named_leases WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else Lease(str(row[0]), str(row[1]), int(row[2]), float(row[3]))


def acquire_named(db: Connection, name: str, replica: str, now: float, ttl: float) -> int | None:
    """Take the named lease as :func:`acquire` takes a shard (its row is made if missing)."""
    db.execute("INSERT INTO named_leases (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
    rows = db.execute(
        "UPDATE named_leases SET owner = ?, epoch = epoch + 1, expires_at = ?"
        " WHERE name = ? AND (owner = '' OR expires_at <= ?) RETURNING epoch",
        (replica, now + ttl, name, now),
    ).fetchall()  # to the end: the statement is done before the next one runs
    return int(rows[0][0]) if rows else None


def renew_named(
    db: Connection, name: str, replica: str, epoch: int, now: float, ttl: float
) -> bool:
    """Extend the named lease as :func:`renew` extends a shard's."""
    cursor = db.execute(
        "UPDATE named_leases SET expires_at = ? WHERE name = ? AND owner = ? AND epoch = ?",
        (now + ttl, name, replica, epoch),
    )
    return cursor.rowcount == 1


def release_named(db: Connection, name: str, replica: str, epoch: int) -> bool:
    """Free the named lease as :func:`release` frees a shard."""
    cursor = db.execute(
        "UPDATE named_leases SET owner = '', expires_at = 0"
        " WHERE name = ? AND owner = ? AND epoch = ?",
        (name, replica, epoch),
    )
    return cursor.rowcount == 1
