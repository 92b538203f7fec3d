"""Parking: a thread whose credentials ran out waits, with a retry timer
(``ActorContext.tell_later``), for a ``RetryTick`` or a ``CredentialsAvailable`` broadcast.

The timer belongs to the incarnation that set it, so a restart or passivation drops it (a
thread that starts with parked inputs tries them at once). A tick that is no longer wanted
is cancelled; one already sent is recognized as stale by its epoch when it arrives, never by
reaching into the actor.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors import ActorContext, Timer
from actors.thread.messages import RetryTick


@attrs.define(eq=False)
class Parking:
    """A thread is parked while its retry timer is set: at most one pending ``RetryTick``;
    earlier ones are stale."""

    _epoch: int = 0
    _timer: Timer | None = None

    @property
    def active(self) -> bool:
        """Whether the thread waits for credentials (set, not cancelled since)."""
        return self._timer is not None

    def start(self, delay: float, ctx: ActorContext[Any]) -> None:
        """Park: cancel a pending tick, then send a ``RetryTick`` of a new epoch in ``delay`` s."""
        self.end()
        self._timer = ctx.tell_later(delay, RetryTick(self._epoch))

    def end(self) -> None:
        """Unpark: stop the pending tick; one already sent is stale by its epoch."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._epoch += 1

    def current(self, tick: RetryTick) -> bool:
        """Whether ``tick`` is the one the last ``start`` scheduled."""
        return tick.epoch == self._epoch
