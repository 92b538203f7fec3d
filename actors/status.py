"""Frozen snapshots of a supervisor and its children, for status commands and metrics."""

from __future__ import annotations

import enum
from collections.abc import Hashable

import attrs

Scalar = str | int | float | bool | None
"""A value of a status field: what JSON can say as it is."""


class ChildState(enum.Enum):
    """What a supervised child is doing right now."""

    STARTING = "starting"
    """Its actor is being built or is running ``on_start``."""
    IDLE = "idle"
    """Waiting for a message, nothing running."""
    BUSY = "busy"
    """Handling a message, or running background work (such as an agent run)."""
    BACKING_OFF = "backing-off"
    """Crashed; waiting out the restart backoff. Its mailbox keeps accepting."""
    FAILED = "failed"
    """Restarted too often; refuses messages until its cooldown ends."""


@attrs.frozen
class ChildStatus:
    """One child at one moment."""

    key: Hashable
    """The key the child was spawned for."""
    state: ChildState
    """What it is doing."""
    mailbox_depth: int
    """Messages waiting in its mailbox (both lanes)."""
    restarts: int
    """Restarts since it was spawned."""
    last_progress_age: float
    """Seconds since it last handled a message or sent a heartbeat."""
    current_message_age: float | None
    """Seconds it has been handling the current message; ``None`` when not handling one."""
    background_tasks: int
    """Background tasks (such as agent runs) the actor has running."""
    detail: tuple[tuple[str, Scalar], ...] = ()
    """Actor-specific fields (``Actor.describe``), in display order: numbers stay numbers,
    ``None`` stays ``None``; any other value becomes its ``str``."""


@attrs.frozen
class SupervisorStatistics:
    """Counters since the supervisor started."""

    live: int
    """Children currently spawned (not passivated, failed ones included)."""
    spawned: int
    """Children spawned, respawns after passivation included."""
    delivered: int
    """Messages accepted into a mailbox."""
    restarts: int
    """Child restarts after a crash or stall."""
    stalls: int
    """Children cancelled by the progress watchdog."""
    passivations: int
    """Children stopped after being idle for ``idle_ttl``."""
    failures: int
    """Times a child was marked failed for exceeding its restart intensity."""
    dead_letters: int
    """Messages that ended without being handled (each with an explicit outcome)."""
    timer_wakeups: int
    """Times the timer task woke up to send the timers then due (``ActorContext.tell_later``;
    a timer cancelled before it is due does not wake it)."""
    timers_queued: int = 0
    """Timers in the supervisor's queue: pending ones, and cancelled ones not yet discarded
    (compacted away once they are most of the queue)."""
    evictions: int = 0
    """Children forgotten at once by ``Supervisor.evict`` (their shard moved elsewhere)."""


@attrs.frozen
class SupervisorStatus:
    """The supervisor's table at one moment."""

    children: tuple[ChildStatus, ...]
    """Every live child, in spawn order."""
    statistics: SupervisorStatistics
    """Counters since start."""
