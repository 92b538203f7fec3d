"""What the leases tell about themselves: a replica's lease status and statistics (shown
by ``threadgate status``, the admin endpoint and metrics through ``gateway.cluster.status``),
and shards as short ranges for log lines."""

from __future__ import annotations

from collections.abc import Collection

import attrs


@attrs.frozen
class LeaseStatus:
    """A replica's leases now."""

    replica_id: str
    """This replica."""
    ttl: float
    """The leases' time to live, in seconds."""
    shards: tuple[tuple[int, int], ...]
    """The shards it holds, with their epochs, by shard."""
    sendable: int
    """How many of them are within their local validity (may send)."""
    leading: tuple[str, ...]
    """The named leases it holds and may act on (``"poller"``)."""
    live_replicas: tuple[str, ...]
    """The live replicas its last round saw, sorted."""
    renewed_ago: float | None
    """Seconds since its last successful round started; ``None`` before the first."""
    leaving: bool
    """Whether it is leaving (or left): it takes nothing more."""


@attrs.frozen
class LeaseStatistics:
    """A replica's rounds and handoffs since it started."""

    rounds: int
    """Rounds run."""
    failed_rounds: int
    """Rounds the store failed (retried next round)."""
    acquired: int
    """Shards taken."""
    released: int
    """Shards released gracefully."""
    lost: int
    """Shards lost: taken over, or not renewed within the TTL."""
    drains_overrun: int
    """Drains cut off at ``drain_timeout``."""
    drains_failed: int
    """Drains that raised."""


def spans(shards: Collection[int]) -> str:
    """Shards as short ranges, for a log line: ``0-41, 77``."""
    ordered, parts = sorted(shards), []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(parts)
