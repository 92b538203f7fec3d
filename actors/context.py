"""``ActorContext``: what an incarnation may do besides handling its messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import anyio
import attrs
from anyio.abc import TaskGroup

from actors._cell import Cell
from actors._timers import Timer, TimerQueue
from actors.envelope import Envelope
from actors.ref import ActorRef

K = TypeVar("K", bound=Hashable)


@attrs.define(eq=False)
class ActorContext(Generic[K]):
    """Handed to each hook of one incarnation; valid for that incarnation only."""

    _cell: Cell
    _task_group: TaskGroup
    _ref: ActorRef[K]
    _wake: Callable[[Cell], None]
    _timers: TimerQueue

    @property
    def key(self) -> K:
        """The actor's key."""
        return self._ref.key

    @property
    def self_ref(self) -> ActorRef[K]:
        """A ref to this actor (routes through the supervisor, like any other ref)."""
        return self._ref

    def tell_self(self, message: object, *, control: bool = False) -> None:
        """Enqueue ``message`` straight into this actor's own mailbox.

        Unlike ``self_ref.send_nowait`` it works while the supervisor drains at shutdown, so
        background tasks can always report back.

        Raises:
            MailboxFullError: the lane is full.
            MailboxClosedError: the actor stopped for good.
        """
        self._cell.mailbox.put_nowait(Envelope(message, control=control))
        self._wake(self._cell)

    def tell_later(self, delay: float, message: object, *, control: bool = False) -> Timer:
        """Enqueue ``message`` into this actor's own mailbox in ``delay`` seconds.

        The timer is not a task: arming and cancelling it are cheap, and it does not keep the
        actor from going dormant or from being passivated. It belongs to this incarnation:
        if the incarnation has ended when it is due, nothing is sent. ``Timer.cancel()``
        drops it; a message already sent cannot be taken back.
        """
        return self._timers.schedule(delay, self._cell, Envelope(message, control=control))

    def heartbeat(self) -> None:
        """Report progress, so the watchdog does not take a slow handler for a hung one."""
        self._cell.progress(anyio.current_time())

    def start_soon(
        self, func: Callable[..., Awaitable[Any]], *args: object, name: str | None = None
    ) -> None:
        """Run ``func(*args)`` as a background task of this incarnation.

        It is cancelled when the incarnation stops or restarts; an exception it raises crashes
        the incarnation. The actor is not passivated while one runs.
        """
        self._cell.background_started()

        async def tracked() -> None:
            try:
                await func(*args)
            finally:
                self._cell.background_ended()

        if name is None:  # cheaper than anyio working it out, and names ``func``, not ``tracked``
            name = getattr(func, "__qualname__", None)
        self._task_group.start_soon(tracked, name=name)
