"""The parked thread's retry timer (``ActorContext.tell_later``); the current run's own
timers are in ``thread_slot``.

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
from actors.thread_messages import RetryTick


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
