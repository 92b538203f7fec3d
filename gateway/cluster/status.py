"""The cluster at one moment: the replicas, the shards each holds, and their threads.

The lease manager (``gateway.cluster.manager``) builds these records; ``threadgate status``
(``gateway.ops.status_view``), the admin endpoint's ``/status`` (key ``cluster``) and the
metrics (``threadgate_replicas_live``, ``threadgate_shards_held``, ...) show them. A single
process on SQLite has none: then nothing of it is shown, and the output is as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from gateway.cluster.shards import SHARDS


@attrs.frozen
class ReplicaStatus:
    """One replica, as the replicas table and the shard leases say."""

    id: str
    """The replica's id (``cluster.replica_id``)."""
    alive: bool
    """Whether its heartbeat is within the lease TTL."""
    shards: tuple[int, ...]
    """The shards it holds a valid lease on, in order."""
    threads_live: int | None
    """Thread actors live there (``None``: not known here)."""
    heartbeat_age: float | None
    """Seconds since its last heartbeat, by the database's clock (``None``: never beat)."""
    leads_poller: bool
    """Whether it holds the ``poller`` lease (the one replica that polls getUpdates)."""

    @property
    def shards_held(self) -> int:
        """How many shards it holds."""
        return len(self.shards)


@attrs.frozen
class ClusterStatus:
    """Every replica the database knows, and which one this is."""

    replicas: tuple[ReplicaStatus, ...]
    """Every replica in the replicas table, live or not, in id order."""
    replica_id: str
    """This replica's id."""
    shards_total: int = SHARDS
    """How many shards there are."""

    @property
    def live(self) -> int:
        """How many replicas are alive."""
        return sum(replica.alive for replica in self.replicas)

    @property
    def this(self) -> ReplicaStatus | None:
        """This replica's row (``None`` before its first heartbeat)."""
        return next((r for r in self.replicas if r.id == self.replica_id), None)

    @property
    def unowned(self) -> int:
        """Shards no live replica holds (waiting for a taker: their chats are not answered)."""
        held = {shard for r in self.replicas if r.alive for shard in r.shards}
        return self.shards_total - len(held)


def assemble(
    replica_id: str,
    now: float,
    ttl: float,
    replicas: Iterable[tuple[str, float]],
    leases: Iterable[tuple[int, str, float]],
    poller: tuple[str, float] | None = None,
    threads_live: int | None = None,
    shards_total: int = SHARDS,
    threads: Mapping[str, int] | None = None,
) -> ClusterStatus:
    """The cluster from the lease tables' rows, all times by the database's clock (``now``).

    Args:
        replica_id: this replica (``threads_live`` is its count; the others' are unknown).
        ttl: the lease TTL: a replica whose heartbeat is older is gone.
        replicas: ``(replica_id, heartbeat_at)`` of every row of ``replicas``.
        leases: ``(shard, owner, expires_at)`` of ``shard_leases``; a lease counts while it
            has not expired.
        poller: ``(owner, expires_at)`` of the ``poller`` named lease, if it has a row.
        threads: the live threads each replica last wrote (``replicas.threads``);
            ``threads_live`` counts for this replica.
    """
    held: dict[str, list[int]] = {}
    for shard, owner, expires_at in leases:
        if owner and expires_at > now:
            held.setdefault(owner, []).append(shard)
    beats = dict(replicas)
    polling = poller[0] if poller is not None and poller[0] and poller[1] > now else ""
    rows = [
        ReplicaStatus(
            id=name,
            alive=name in beats and now - beats[name] < ttl,
            shards=tuple(sorted(held.get(name, ()))),
            threads_live=threads_live
            if name == replica_id
            else (None if threads is None else threads.get(name)),
            heartbeat_age=max(0.0, now - beats[name]) if name in beats else None,
            leads_poller=name == polling,
        )
        for name in sorted(set(beats) | set(held))  # an owner without a row: gone
    ]
    return ClusterStatus(tuple(rows), replica_id, shards_total)


def ranges(shards: Iterable[int]) -> str:
    """Shard numbers as short ranges: ``0-3, 7, 9-10`` (``-`` for none)."""
    parts: list[str] = []
    run: list[int] = []
    for shard in sorted(shards):
        if run and shard != run[-1] + 1:
            parts.append(_run(run))
            run = []
        run.append(shard)
    if run:
        parts.append(_run(run))
    return ", ".join(parts) or "-"


def _run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def cluster_json(status: ClusterStatus) -> dict[str, Any]:
    """``/status``'s ``cluster``: JSON-able, every field its natural type (docs/operations.md)."""
    return {
        "replica_id": status.replica_id,
        "shards_total": status.shards_total,
        "replicas_live": status.live,
        "shards_unowned": status.unowned,
        "replicas": [
            {
                "id": replica.id,
                "this": replica.id == status.replica_id,
                "alive": replica.alive,
                "shards_held": replica.shards_held,
                "shards": list(replica.shards),
                "threads_live": replica.threads_live,
                "heartbeat_age": (
                    None if replica.heartbeat_age is None else round(replica.heartbeat_age, 3)
                ),
                "leads_poller": replica.leads_poller,
            }
            for replica in status.replicas
        ],
    }
