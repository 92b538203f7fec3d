"""Webhook deliveries may arrive out of order: put each thread's updates back in order.

Telegram numbers a bot's updates one by one and may POST several at once, so an update can
arrive before an earlier one of the same thread. Rules:

* An update is delivered once every update with a smaller id has arrived, or once its thread
  has waited ``window`` seconds for the missing ones (which are then given up on). A
  thread's updates are always delivered in id order.
* Every arrival fills its gap, also of an update that reaches no thread (ignored, duplicate).
* An update that arrives after its gap was given up on is delivered at once, with a log line.
* One task (``run``) delivers, so a delivery that waits for a full mailbox cannot be
  overtaken by a later one.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Awaitable, Callable

import anyio
import attrs
from loguru import logger

from actors.thread.records import ThreadKey
from gateway.telegram.routing import Routed


@attrs.frozen(order=True)
class _Held:
    update_id: int
    """Orders a thread's held updates."""
    arrived_at: float = attrs.field(order=False)
    """When it arrived (its wait is counted from here)."""
    routed: Routed = attrs.field(order=False)
    """What to deliver."""


@attrs.define(eq=False)
class Resequencer:
    """Holds early updates per thread until the earlier ones arrived (or the window passed)."""

    _deliver: Callable[[Routed], Awaitable[None]]
    _window: float
    _contiguous: int | None = None
    """Every update id up to this one has arrived (or was given up on); ``None``: not known
    yet (a new inbox), so the first updates wait one window for any earlier ones."""
    _early: set[int] = attrs.field(factory=set, init=False)
    _held: dict[ThreadKey, list[_Held]] = attrs.field(factory=dict, init=False)
    _ready: deque[Routed] = attrs.field(factory=deque, init=False)
    _changed: anyio.Event = attrs.field(factory=anyio.Event, init=False)

    @property
    def held(self) -> int:
        """Updates waiting for an earlier one."""
        return sum(len(heap) for heap in self._held.values())

    def arrived(self, update_id: int, routed: Routed | None = None) -> None:
        """Update ``update_id`` arrived; ``routed`` is what to deliver, if anything."""
        if self._contiguous is not None and update_id <= self._contiguous:
            if routed is not None:
                logger.warning(
                    "update {id} for {key} arrived after its reorder window; delivered now",
                    id=update_id,
                    key=routed.key,
                )
                self._ready.append(routed)
                self._changed.set()
            return
        self._early.add(update_id)
        self._absorb()
        if routed is not None:
            held = _Held(update_id, anyio.current_time(), routed)
            heapq.heappush(self._held.setdefault(routed.key, []), held)
            self._changed.set()  # the delivering task recomputes its next deadline
        self._release(anyio.current_time())

    async def run(self) -> None:
        """Deliver released updates, in order, forever."""
        while True:
            while self._ready:
                await self._deliver(self._ready.popleft())
            self._changed = anyio.Event()
            waits = [
                held.arrived_at + self._window for heap in self._held.values() for held in heap
            ]
            with anyio.move_on_after(min(waits, default=math.inf) - anyio.current_time()):
                await self._changed.wait()
            self._release(anyio.current_time())

    def _release(self, now: float) -> None:
        for key, heap in list(self._held.items()):
            overdue = [h.update_id for h in heap if now - h.arrived_at >= self._window]
            if overdue:
                logger.info(
                    "thread {key}: gave up waiting for updates before {id} (reorder window)",
                    key=key,
                    id=max(overdue),
                )
                self._contiguous = max(self._contiguous or 0, *overdue)
                self._absorb()
            while heap and self._contiguous is not None and heap[0].update_id <= self._contiguous:
                self._ready.append(heapq.heappop(heap).routed)
            if not heap:
                del self._held[key]
        if self._ready:
            self._changed.set()

    def _absorb(self) -> None:
        """Advance the contiguous mark over ids that arrived early; forget those below it."""
        if self._contiguous is None:
            return  # nothing known yet: the first updates wait one window
        while self._contiguous + 1 in self._early:
            self._contiguous += 1
        self._early = {i for i in self._early if i > self._contiguous}
