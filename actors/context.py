"""``ActorContext``: what an incarnation may do besides handling its messages.

The runtime builds the concrete context (``actors._context``); actors only see this
interface, so nothing of the supervisor's private records reaches them.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from actors.ref import ActorRef
    from actors.timers import Timer

K = TypeVar("K", bound=Hashable)


class ActorContext(abc.ABC, Generic[K]):
    """Handed to each hook of one incarnation; valid for that incarnation only."""

    __slots__ = ()

    @property
    @abc.abstractmethod
    def key(self) -> K:
        """The actor's key."""

    @property
    @abc.abstractmethod
    def self_ref(self) -> ActorRef[K]:
        """A ref to this actor (routes through the supervisor, like any other ref)."""

    @abc.abstractmethod
    def tell_self(self, message: object, *, control: bool = False) -> None:
        """Enqueue ``message`` straight into this actor's own mailbox.

        Unlike ``self_ref.send_nowait`` it works while the supervisor drains at shutdown, so
        background tasks can always report back.

        Raises:
            MailboxFullError: the lane is full.
            MailboxClosedError: the actor stopped for good.
        """

    @abc.abstractmethod
    def tell_later(self, delay: float, message: object, *, control: bool = False) -> Timer:
        """Enqueue ``message`` into this actor's own mailbox in ``delay`` seconds.

        The timer is not a task: arming and cancelling it are cheap, and it does not keep the
        actor from going dormant or from being passivated. It belongs to this incarnation:
        if the incarnation has ended when it is due, nothing is sent. ``Timer.cancel()``
        drops it; a message already sent cannot be taken back.
        """

    @abc.abstractmethod
    def heartbeat(self) -> None:
        """Report progress, so the watchdog does not take a slow handler for a hung one."""

    @abc.abstractmethod
    def start_soon(
        self, func: Callable[..., Awaitable[Any]], *args: object, name: str | None = None
    ) -> None:
        """Run ``func(*args)`` as a background task of this incarnation.

        It is cancelled when the incarnation stops or restarts; an exception it raises crashes
        the incarnation. The actor is not passivated while one runs.
        """
