"""The ``Actor`` base class: what the runtime calls, and when."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from actors.context import ActorContext

M = TypeVar("M")


class Actor(Generic[M]):
    """One incarnation of an actor. Subclass and implement :meth:`receive`.

    Rules:

    * ``receive`` is called with one message at a time, in mailbox order.
    * An exception from ``receive`` for a *tell* crashes the incarnation: the supervisor
      builds a new one (with the same mailbox) after a backoff and retries that message once.
      For an *ask*, the exception goes to the asker and the actor lives on.
    * A child that restarts too often is marked failed; ``on_failed`` has the last word.
    * Background tasks (``ctx.start_soon``) belong to the incarnation: they are cancelled when
      it stops, and an exception in one crashes it.
    * Between messages an idle actor is *dormant*: the instance is kept but no task runs
      for it. A context is valid only during the call it is passed to.
    * Keep durable state in a store port, never only in the instance: restarts and
      passivation build a fresh instance.
    """

    async def on_start(self, ctx: ActorContext[Any]) -> None:
        """Called before the first message of each incarnation (load state here)."""

    async def receive(self, message: M, ctx: ActorContext[Any]) -> object:
        """Handle one message; the return value answers an ``ask``."""
        raise NotImplementedError

    async def on_stop(self) -> None:
        """Called once the incarnation is stopped for good (passivation or shutdown).

        By then the actor is unreachable and a successor may already be running: do not
        write state here that a successor could have written since.
        """

    async def on_failed(self, undelivered: Sequence[M]) -> Sequence[M]:
        """Called on a fresh instance (``on_start`` is not) when the child was marked failed
        (it restarted too often), with the messages still queued for it (tells only, the one
        it crashed on first). Conclude what the actor's durable state and these messages
        hold, and return those it did not take care of: they become ``FAILED`` dead letters.
        There is no context: no timers, no background work. The default takes care of none.
        """
        return undelivered

    def can_passivate(self) -> bool:
        """Whether the actor may be stopped when idle (e.g. ``False`` while it waits on a timer)."""
        return True

    def wants(self, message: object) -> bool:
        """Whether a broadcast ``message`` concerns this actor now. Asked only while the actor
        is dormant: one that says no is neither sent the message nor woken (a broadcast to
        many dormant actors starts a task only for those it concerns). The default: yes."""
        return True

    def describe(self) -> Mapping[str, object]:
        """Actor-specific fields for the status table."""
        return {}
