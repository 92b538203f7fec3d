"""The balance of the shards over the live replicas: a pure plan, the same on every
replica for the same rows.

Rules:

* The live replicas, sorted by id, share the shards fairly: each gets ``shards // n``, and
  the first ``shards % n`` one more (:func:`targets`).
* Each replica has a home: a contiguous block of that many shards, in the same order. A
  replica takes free shards of its home first, then the next free ones after it, and gives
  up shards outside its home first: when replicas join or leave, few shards move, and
  replicas racing for free shards mostly want different ones.
* A replica takes only shards that are free or expired, never one another replica holds
  (however many it has): the owner releases its excess itself, after draining it.
* Below its target a replica takes what is free, up to the target; above it, it releases
  down to the target.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import attrs

from gateway.cluster.leases import Lease


@attrs.frozen
class Plan:
    """What one replica does this round."""

    acquire: tuple[int, ...]
    """Free or expired shards to take, in the order to try them."""
    release: tuple[int, ...]
    """Shards it holds beyond its share, to drain and release."""


def targets(live: Sequence[str], shards: int) -> dict[str, int]:
    """How many shards each live replica should hold."""
    ordered = sorted(set(live))
    if not ordered:
        return {}
    base, extra = divmod(shards, len(ordered))
    return {replica: base + (1 if i < extra else 0) for i, replica in enumerate(ordered)}


def homes(live: Sequence[str], shards: int) -> dict[str, range]:
    """Each live replica's home: consecutive blocks of its target's size, in id order."""
    start, blocks = 0, {}
    for replica, count in targets(live, shards).items():
        blocks[replica] = range(start, start + count)
        start += count
    return blocks


def plan(
    me: str, live: Sequence[str], leases: Sequence[Lease], held: Collection[int], now: float
) -> Plan:
    """What ``me``, holding ``held``, should take and release, given the live replicas and
    every shard's row at ``now`` (the database's wall clock)."""
    shards = len(leases)
    target = targets(live, shards).get(me, 0)
    home = homes(live, shards).get(me, range(0))
    start = home.start if home else 0

    def order(shard: int) -> tuple[bool, int]:
        return shard not in home, (shard - start) % shards

    if len(held) > target:
        excess = sorted(held, key=order, reverse=True)[: len(held) - target]
        return Plan((), tuple(sorted(excess)))
    free = [int(lease.key) for lease in leases if lease.free(now) and lease.key not in held]
    wanted = sorted(free, key=order)[: target - len(held)]
    return Plan(tuple(wanted), ())
