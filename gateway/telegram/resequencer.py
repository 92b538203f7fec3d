"""Webhook deliveries may arrive out of order: put each thread's updates back in order.

Telegram numbers a bot's updates one by one and may POST several at once, so an update can
arrive before an earlier one of the same thread. Rules:

* An update is delivered once every update with a smaller id has arrived, or once its thread
  has waited ``window`` seconds for the missing ones (which are then given up on). A
  thread's updates are always delivered in id order.
* Every arrival fills its gap, also of an update that reaches no thread (ignored, duplicate).
* An update that arrives after its gap was given up on is delivered at once, with a log line.
* One task (``run``, a supervised service) delivers, in release order; a delivery never
  waits for a thread (``Delivery`` refuses what a full mailbox cannot take).
* Its memory is bounded. A thread holds at most ``max_held_per_thread`` updates and at most
  ``max_threads`` threads hold any: past either, the gap before that thread's updates (the
  thread holding the oldest one, for ``max_threads``) is given up on at once, as if its
  window had passed, with a log line. At most ``max_early`` ids that arrived after a gap are
  remembered: past that, the gap is given up on too.
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
    _max_held_per_thread: int = attrs.field(default=100, kw_only=True)
    _max_threads: int = attrs.field(default=1000, kw_only=True)
    _max_early: int = attrs.field(default=10_000, kw_only=True)
    _early: set[int] = attrs.field(factory=set, init=False)
    _held: dict[ThreadKey, list[_Held]] = attrs.field(factory=dict, init=False)
    _ready: deque[Routed] = attrs.field(factory=deque, init=False)
    _changed: anyio.Event = attrs.field(factory=anyio.Event, init=False)

    @property
    def held(self) -> int:
        """Updates waiting for an earlier one."""
        return sum(len(heap) for heap in self._held.values())

    @property
    def threads(self) -> int:
        """Threads holding an update."""
        return len(self._held)

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
        if len(self._early) > self._max_early:
            first = min(self._early)
            self._give_up(first, f"{len(self._early)} later updates arrived meanwhile")
        self._absorb()
        if routed is not None:
            self._hold(_Held(update_id, anyio.current_time(), routed))
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

    def _hold(self, held: _Held) -> None:
        key = held.routed.key
        heap = self._held.get(key)
        if heap is None:
            if len(self._held) >= self._max_threads:
                oldest = min(self._held, key=lambda k: self._held[k][0].update_id)
                self._give_up(
                    max(h.update_id for h in self._held[oldest]),
                    f"{len(self._held)} threads wait already; thread {oldest} waited longest",
                )
            heap = self._held[key] = []
        heapq.heappush(heap, held)
        if len(heap) > self._max_held_per_thread:
            self._give_up(max(h.update_id for h in heap), f"thread {key} holds {len(heap)} updates")
        self._changed.set()  # the delivering task recomputes its next deadline

    def _give_up(self, through: int, why: str) -> None:
        """Count every id up to ``through`` as arrived: the gaps below it are given up on."""
        logger.warning("gave up waiting for updates before {id}: {why}", id=through, why=why)
        self._contiguous = max(self._contiguous or 0, through)
        self._absorb()

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
