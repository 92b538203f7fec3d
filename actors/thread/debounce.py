"""Debounce: messages one user sends in quick succession become one turn.

With ``ThreadSettings.debounce`` > 0, a user message accepted while no run is active (and
the thread is not parked) does not start a run at once: it opens a window of that many
seconds, and each further message of the same user within the window extends it. When the
window closes (a ``DebounceTick`` of its epoch), everything held forms one turn. OpenClaw's
"collect" mode does the same.

Rules:

* The held inputs are the thread's ``queued`` inputs, saved in its record like any queued
  input: a crash or restart keeps them, and the next incarnation starts them at once
  (``Recover``; the window's timer belonged to the incarnation that set it).
* Nothing loses them: a message from another user, or a command that becomes input (a
  skill, ``/retry``), closes the window early and starts the turn with it; ``/stop`` and
  a reset conclude them as they conclude anything queued; any run that starts takes them.
* A tick of a window that a later message extended, or that closed early, is stale (its
  epoch is older).

The cost is latency: every turn starts ``debounce`` seconds after its last message, a lone
message too. Keep it short (1 to 3 s) and off where users send one message at a time.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors import ActorContext, Timer
from actors.thread.messages import DebounceTick


@attrs.define(eq=False)
class Debounce:
    """At most one open window, of one user; ticks of earlier windows are stale."""

    _epoch: int = 0
    _timer: Timer | None = None
    _user: int | None = None

    @property
    def holding(self) -> bool:
        """Whether a window is open (the queued inputs wait for it to close)."""
        return self._timer is not None

    def extends(self, user_id: int | None) -> bool:
        """Whether a message of ``user_id`` now is held too (no window, or theirs)."""
        return not self.holding or user_id == self._user

    def hold(self, user_id: int | None, delay: float, ctx: ActorContext[Any]) -> None:
        """Open the window, or extend it: it closes ``delay`` seconds from now."""
        self.end()
        self._user = user_id
        self._timer = ctx.tell_later(delay, DebounceTick(self._epoch), control=True)

    def end(self) -> None:
        """Close the window (its tick, if already sent, is stale by its epoch)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._epoch += 1

    def current(self, tick: DebounceTick) -> bool:
        """Whether ``tick`` closes the open window."""
        return self.holding and tick.epoch == self._epoch
