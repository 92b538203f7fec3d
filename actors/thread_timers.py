"""The thread actor's timers: messages it sends itself later (``ActorContext.tell_later``).

A timer belongs to the incarnation that set it, so a restart or passivation drops it. A tick
that is no longer wanted is cancelled when the actor can; one that was already sent is
recognized as stale when it arrives (by its epoch or its run id), never by reaching into
the actor.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors._timers import Timer
from actors.context import ActorContext
from actors.thread_messages import KeepaliveTick, QueueNoticeTick, RetryTick


@attrs.define(eq=False)
class RetryTimer:
    """While a thread is parked: at most one pending ``RetryTick``; earlier ones are stale."""

    _epoch: int = 0
    _timer: Timer | None = None

    def start(self, delay: float, ctx: ActorContext[Any]) -> None:
        """Cancel a pending tick, then send a ``RetryTick`` of a new epoch in ``delay`` s."""
        self.cancel()
        self._timer = ctx.tell_later(delay, RetryTick(self._epoch))

    def cancel(self) -> None:
        """Stop the pending tick; one already sent is stale by its epoch."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._epoch += 1

    def current(self, tick: RetryTick) -> bool:
        """Whether ``tick`` is the one the last ``start`` scheduled."""
        return tick.epoch == self._epoch


@attrs.define(eq=False)
class RunTimers:
    """The current run's timers: its keepalive, and the notice for a message queued behind
    it (at most one per run). Both end with the run."""

    _run_id: int = 0
    _keepalive: Timer | None = None
    _notice: Timer | None = None

    def start(self, run_id: int, keepalive_delay: float, ctx: ActorContext[Any]) -> None:
        """A run began: its first keepalive is due in ``keepalive_delay`` seconds."""
        self.stop()
        self._run_id = run_id
        self.keepalive_in(keepalive_delay, ctx)

    def keepalive_in(self, delay: float, ctx: ActorContext[Any]) -> None:
        """The next keepalive of the run is due in ``delay`` seconds."""
        self._keepalive = ctx.tell_later(delay, KeepaliveTick(self._run_id), control=True)

    def notice_in(self, delay: float, message_id: int, ctx: ActorContext[Any]) -> None:
        """Say "still working" to ``message_id`` in ``delay`` seconds, unless the run ends
        first or this run has already scheduled a notice."""
        if self._notice is None:
            tick = QueueNoticeTick(self._run_id, message_id)
            self._notice = ctx.tell_later(delay, tick, control=True)

    def stop(self) -> None:
        """The run ended: its ticks are no longer wanted."""
        for timer in (self._keepalive, self._notice):
            if timer is not None:
                timer.cancel()
        self._keepalive = self._notice = None
