"""The thread's run slot: its one current run, and what belongs to that run only.

Part of the thread actor's state, changed only by the thread actor (never shared): which run
is current (a report or tick of any other run is stale), the run before it while it may
still be unwinding (a new run waits for it to unwind, so a thread never has two), and the
current run's timers: its keepalive, and the "still working" notice for a message queued
behind it. The timers end with the run. A run that has unwound (its report, sent last, has
arrived) is let go of: an idle thread keeps no run.
"""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from actors import ActorContext, Timer
from actors.thread.messages import KeepaliveTick, QueueNoticeTick
from actors.thread.ports import AgentRunner, Outbox, RunRequest
from actors.thread.records import PendingInput
from actors.thread.run import Run
from actors.thread.settings import ThreadSettings


@attrs.define(eq=False)
class RunSlot:
    """At most one current run of a thread."""

    _seq: int = 0
    _current: Run | None = None
    _previous: Run | None = None
    """The last run launched, until it has unwound (``settle``)."""
    _keepalive: Timer | None = None
    _notice: Timer | None = None

    @property
    def seq(self) -> int:
        """The id of the last run begun (ids only grow, across restarts too)."""
        return self._seq

    @property
    def current(self) -> Run | None:
        """The current run, if any."""
        return self._current

    def is_current(self, run_id: int) -> bool:
        """Whether ``run_id`` is the current run (reports and ticks of others are stale)."""
        return self._current is not None and run_id == self._current.id

    def begin(self, generation: int, inputs: tuple[PendingInput, ...]) -> Run:
        """Make a new run of ``inputs`` current; the caller saves, then launches it."""
        assert self._current is None, "one run at a time"
        self._seq += 1
        self._current = Run(self._seq, generation, inputs, anyio.current_time())
        return self._current

    def recover(self, generation: int, inputs: tuple[PendingInput, ...]) -> None:
        """Make the run a restart interrupted (id ``seq``, never launched here) current, so
        that its report, if the earlier incarnation left one, is not taken for stale."""
        assert self._current is None, "one run at a time"
        self._current = Run(self._seq, generation, inputs, anyio.current_time(), orphan=True)

    def launch(
        self,
        run: Run,
        request: RunRequest,
        agent: AgentRunner,
        outbox: Outbox,
        settings: ThreadSettings,
        ctx: ActorContext[Any],
    ) -> None:
        """Start ``run``'s task (it waits for the previous run to unwind) and its keepalive."""
        self.settle()
        previous, self._previous = self._previous, run
        self.keepalive_in(settings.keepalive_delay, ctx)
        ctx.start_soon(run.execute, request, agent, outbox, settings, ctx, previous)

    def settle(self) -> None:
        """Let go of the last run launched if it has unwound (its task ended: it reports
        after that). Called with every run's report, current or stale, and at each launch."""
        if self._previous is not None and self._previous.reported:
            self._previous = None

    def keepalive(self, interval: float, ctx: ActorContext[Any]) -> None:
        """The current run's keepalive is due: show that it is alive; the next in ``interval``."""
        assert self._current is not None, "callers check is_current"
        self._current.keepalive()
        self.keepalive_in(interval, ctx)

    def keepalive_in(self, delay: float, ctx: ActorContext[Any]) -> None:
        """The current run's next keepalive is due in ``delay`` seconds."""
        assert self._current is not None
        tick = KeepaliveTick(self._current.id)
        self._keepalive = ctx.tell_later(delay, tick, control=True)

    def notice_in(self, delay: float, message_id: int, ctx: ActorContext[Any]) -> None:
        """Say "still working" to ``message_id`` in ``delay`` seconds, unless the current run
        ends first or already has a notice on its way (at most one per run)."""
        assert self._current is not None
        if self._notice is None:
            tick = QueueNoticeTick(self._current.id, message_id)
            self._notice = ctx.tell_later(delay, tick, control=True)

    def end(self) -> Run:
        """The current run ended (its report arrived, or it is being cancelled): it is no
        longer current, and its timers are cancelled."""
        run, self._current = self._current, None
        assert run is not None, "callers check is_current"
        for timer in (self._keepalive, self._notice):
            if timer is not None:
                timer.cancel()
        self._keepalive = self._notice = None
        self.settle()  # ended by its report: it has unwound (a cancelled one reports later)
        return run
