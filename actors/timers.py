"""Timers: messages an actor sends itself later, without a task per timer.

A supervisor keeps one :class:`TimerQueue` and one task that runs it. The task sleeps in a
cancel scope whose deadline is the earliest pending timer in the heap. Scheduling an earlier
timer moves the deadline earlier; cancelling the earliest one moves it on to the next pending
timer (or to never), so the task wakes only when a timer is due to be sent. Cancelling any
other timer just marks it, and the task discards it when it reaches the top of the heap. A
timer thus costs a heap entry, not a task: an agent run can arm its "typing…" timer and a
queued message its notice timer, and cancel them when the run ends, at the price of a heap
push, a flag and at most two deadline moves (a task woken for nothing costs about fifteen
times as much as the two moves, measured on asyncio).

Rules:

* A timer belongs to the incarnation that set it: if that incarnation has ended by the time
  the timer is due (restart, passivation, shutdown), the message is not sent.
* A cancelled timer is never sent. One already sent cannot be taken back: actors recognize
  a tick that is no longer wanted when it arrives (by an epoch or a run id).
* A cancelled or sent timer pins nothing: it lets go of its child and its message at once,
  so an actor that cancelled a long timer can be passivated and collected before the timer
  would have been due. Cancelled entries left in the heap are compacted away once they
  outnumber the pending ones, so the heap stays in proportion to the pending timers.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import anyio
import attrs

from actors._cell import Cell
from actors.envelope import Envelope

COMPACT_AT = 64
"""Cancelled entries the heap may hold before it is compacted (when they are most of it)."""


@attrs.define(eq=False)
class Timer:
    """A message on its way to an actor at a later time; ``cancel()`` drops it."""

    _queue: TimerQueue
    # The child and the message, while pending; ``None`` once sent or cancelled (pins nothing).
    _target: tuple[Cell, Envelope] | None
    _incarnation: int

    @property
    def cell(self) -> Cell:
        """The child it goes to (only while pending)."""
        assert self._target is not None, "a sent or cancelled timer has let go of its child"
        return self._target[0]

    @property
    def incarnation(self) -> int:
        """The incarnation that set it (it is not sent to a later one)."""
        return self._incarnation

    @property
    def envelope(self) -> Envelope:
        """What is sent (only while pending)."""
        assert self._target is not None, "a sent or cancelled timer has let go of its message"
        return self._target[1]

    @property
    def pending(self) -> bool:
        """Neither sent nor cancelled yet."""
        return self._target is not None

    def cancel(self) -> None:
        """Drop the message if it was not sent yet; harmless otherwise."""
        if self._target is not None:
            self._target = None
            self._queue._dropped(self)

    def _sent(self) -> None:
        self._target = None


@attrs.define(eq=False)
class TimerQueue:
    """Pending timers, earliest first, and the loop that sends them when due."""

    _deliver: Callable[[Timer], None]
    _heap: list[tuple[float, int, Timer]] = attrs.field(factory=list, init=False)
    _order: itertools.count[int] = attrs.field(factory=itertools.count, init=False)
    _sleep: anyio.CancelScope | None = attrs.field(default=None, init=False)
    _wakeups: int = attrs.field(default=0, init=False)
    _cancelled: int = attrs.field(default=0, init=False)
    """Cancelled timers still in the heap."""

    def __len__(self) -> int:
        """Timers in the heap: pending ones, and cancelled ones not discarded yet."""
        return len(self._heap)

    @property
    def wakeups(self) -> int:
        """Times the task woke up to send the timers then due."""
        return self._wakeups

    def schedule(self, delay: float, cell: Cell, envelope: Envelope) -> Timer:
        """Send ``envelope`` to the current incarnation of ``cell`` in ``delay`` seconds."""
        due = anyio.current_time() + max(0.0, delay)
        timer = Timer(self, (cell, envelope), cell.incarnation)
        heapq.heappush(self._heap, (due, next(self._order), timer))
        sleep = self._sleep
        if sleep is not None and due < sleep.deadline:
            sleep.deadline = due
        return timer

    async def run(self) -> None:
        """Send timers as they come due, forever (run it in the owner's task group)."""
        while True:
            with anyio.CancelScope(deadline=self._next_due()) as sleep:
                self._sleep = sleep
                try:
                    await anyio.sleep_forever()
                finally:
                    self._sleep = None
            self._wakeups += 1
            now = anyio.current_time()
            heap = self._heap
            while heap and heap[0][0] <= now:
                timer = heapq.heappop(heap)[2]
                if timer.pending:
                    self._deliver(timer)
                    timer._sent()
                else:
                    self._cancelled -= 1

    def _dropped(self, timer: Timer) -> None:
        """``timer`` was cancelled: if it was the earliest, sleep until the next one; compact
        the heap when cancelled entries are most of it."""
        heap, sleep = self._heap, self._sleep
        self._cancelled += 1
        if heap and heap[0][2] is timer:
            if sleep is not None:
                sleep.deadline = self._next_due()
        elif self._cancelled > COMPACT_AT and 2 * self._cancelled > len(heap):
            self._heap = [entry for entry in heap if entry[2].pending]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def _discard_cancelled(self) -> None:
        heap = self._heap
        while heap and not heap[0][2].pending:
            heapq.heappop(heap)
            self._cancelled -= 1

    def _next_due(self) -> float:
        self._discard_cancelled()
        return self._heap[0][0] if self._heap else math.inf
