"""The runtime's ``ActorContext``: one per incarnation, over the child's private cell."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import anyio
import attrs
from anyio.abc import TaskGroup

from actors._cell import Cell
from actors.context import ActorContext
from actors.envelope import Envelope
from actors.ref import ActorRef
from actors.timers import Timer, TimerQueue

K = TypeVar("K", bound=Hashable)


@attrs.define(eq=False, slots=True)
class CellContext(ActorContext[K]):
    """What the supervisor hands to each hook of one incarnation of ``cell``."""

    _cell: Cell
    _task_group: TaskGroup
    _ref: ActorRef[K]
    _wake: Callable[[Cell], None]
    _timers: TimerQueue

    @property
    def key(self) -> K:
        return self._ref.key

    @property
    def self_ref(self) -> ActorRef[K]:
        return self._ref

    def tell_self(self, message: object, *, control: bool = False) -> None:
        self._cell.mailbox.put_nowait(Envelope(message, control=control))
        self._wake(self._cell)

    def tell_later(self, delay: float, message: object, *, control: bool = False) -> Timer:
        return self._timers.schedule(delay, self._cell, Envelope(message, control=control))

    def heartbeat(self) -> None:
        self._cell.progress(anyio.current_time())

    def start_soon(
        self, func: Callable[..., Awaitable[Any]], *args: object, name: str | None = None
    ) -> None:
        self._cell.background_started()

        async def tracked() -> None:
            try:
                await func(*args)
            finally:
                self._cell.background_ended()

        if name is None:  # cheaper than anyio working it out, and names ``func``, not ``tracked``
            name = getattr(func, "__qualname__", None)
        self._task_group.start_soon(tracked, name=name)
