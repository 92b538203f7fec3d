"""The lease fence: a thread's write goes through only while this replica holds the
thread's shard at the epoch it took it with (``gateway.store.fence``).

Rules:

* The check reads the shard's row inside the write's transaction and compares its owner and
  epoch with what this replica holds. On PostgreSQL it reads ``FOR SHARE``: the row stays
  as it was until the write commits, so a takeover (an ``UPDATE`` of the row) waits for the
  write, and a write after the takeover sees the new epoch. On SQLite the one writer
  serializes the check, the write and any takeover.
* Expiry alone does not refuse a write: a lease that expired and that nobody took is still
  this replica's (the epoch did not move); whoever takes it bumps the epoch first.
* A fence not bound to a :class:`~gateway.cluster.manager.ReplicaLeases` (or whose replica
  holds nothing) refuses every write: it holds no epoch.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from gateway.cluster.leases import holder
from gateway.cluster.schema import Dialect
from gateway.exceptions import ShardMovedError
from gateway.store.fence import Connection


@attrs.define
class LeaseFence:
    """Implements ``gateway.store.fence.Fence`` for one replica.

    Built before the store (the store takes its fence), then bound to the replica's leases
    (``bind(leases.epoch)``; :class:`~gateway.cluster.manager.ReplicaLeases` binds the
    fence it is given).
    """

    _replica_id: str
    _dialect: Dialect
    _epochs: Callable[[int], int | None] = attrs.field(default=lambda _shard: None, init=False)
    _refused: int = attrs.field(default=0, init=False)

    @property
    def replica_id(self) -> str:
        return self._replica_id

    @property
    def refused(self) -> int:
        """Writes refused so far."""
        return self._refused

    def bind(self, epochs: Callable[[int], int | None]) -> None:
        """Follow ``epochs``: the epoch this replica holds a shard at, or ``None``."""
        self._epochs = epochs

    def check(self, db: Connection, shard: int) -> None:
        """Raise :class:`~gateway.exceptions.ShardMovedError` unless this replica holds
        ``shard`` at the epoch the database has (run inside the write's transaction)."""
        held = self._epochs(shard)
        owner, epoch = holder(db, shard, lock=self._dialect == "postgresql")
        if held is None or owner != self._replica_id or epoch != held:
            self._refused += 1
            raise ShardMovedError(shard, 0 if held is None else held, owner)
