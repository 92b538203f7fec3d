"""``ActorRef``: the address of an actor, stable across its restarts and passivation."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

import anyio
import attrs

from actors.envelope import Envelope, Reply
from actors.exceptions import AskTimeoutError

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class Router(Protocol[K_contra]):
    """Whatever routes envelopes by key to a mailbox (the supervisor)."""

    def deliver_nowait(self, key: K_contra, envelope: Envelope) -> None:
        """Enqueue at once or raise."""

    async def deliver(self, key: K_contra, envelope: Envelope) -> None:
        """Enqueue, waiting for room if the overflow policy says so."""


@attrs.frozen
class ActorRef(Generic[K]):
    """Sends to the actor for ``key``; the supervisor spawns it on demand.

    A ref routes by key on every send, so it never points at a dead incarnation.
    """

    key: K
    """The actor's key."""
    _router: Router[K] = attrs.field(repr=False)

    def send_nowait(self, message: object, *, control: bool = False) -> None:
        """Enqueue ``message``; raise instead of waiting.

        Raises:
            MailboxFullError: the lane is full.
            ActorFailedError: the actor is marked failed.
            SupervisorClosedError: the supervisor is not running.
        """
        self._router.deliver_nowait(self.key, Envelope(message, control=control))

    async def send(self, message: object, *, control: bool = False) -> None:
        """Enqueue ``message``, waiting for room (under ``OverflowPolicy.WAIT``)."""
        await self._router.deliver(self.key, Envelope(message, control=control))

    async def ask(self, message: object, *, timeout: float | None, control: bool = False) -> object:
        """Send ``message`` and wait for the actor's answer.

        An exception raised by the actor while handling an asked message goes to the asker;
        the actor keeps running. Never ask yourself: it deadlocks until the timeout.
        ``timeout=None`` sets no deadline of its own: for a caller whose own cancel scope
        already bounds the wait (it saves a scope and a timer per ask).

        Raises:
            AskTimeoutError: no answer within ``timeout`` seconds (enqueueing included).
            ActorCrashedError: the message crashed the actor twice.
            ActorStoppedError: the actor stopped for good before handling it.
        """
        reply = Reply()
        envelope = Envelope(message, control=control, reply=reply)
        if timeout is None:
            await self._router.deliver(self.key, envelope)
            return await reply.wait()
        with anyio.move_on_after(timeout):
            await self._router.deliver(self.key, envelope)
            return await reply.wait()
        raise AskTimeoutError(f"actor {self.key!r} did not answer within {timeout:.1f}s")
