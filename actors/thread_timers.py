"""The thread actor's timers: messages it sends itself later. Each is a background task of
the incarnation, so a restart or passivation cancels it; a tick that is no longer wanted is
recognized as stale when it arrives, never by reaching into the actor."""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from actors.context import ActorContext
from actors.thread_messages import RetryTick


@attrs.define(eq=False)
class RetryTimer:
    """While a thread is parked: at most one pending ``RetryTick``; earlier ones are stale."""

    _epoch: int = 0
    _scope: anyio.CancelScope | None = None

    def start(self, delay: float, ctx: ActorContext[Any]) -> None:
        """Cancel a pending tick, then send a ``RetryTick`` of a new epoch in ``delay`` s."""
        self.cancel()
        scope = self._scope = anyio.CancelScope()
        tick = RetryTick(self._epoch)

        async def later() -> None:
            with scope:
                await anyio.sleep(delay)
                ctx.tell_self(tick)

        ctx.start_soon(later)

    def cancel(self) -> None:
        """Stop the pending tick; one already sent is stale by its epoch."""
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        self._epoch += 1

    def current(self, tick: RetryTick) -> bool:
        """Whether ``tick`` is the one the last ``start`` scheduled."""
        return tick.epoch == self._epoch


def tell_later(delay: float, message: object, ctx: ActorContext[Any]) -> None:
    """Send ``message`` to the actor itself (control lane) in ``delay`` seconds."""

    async def later() -> None:
        await anyio.sleep(delay)
        ctx.tell_self(message, control=True)

    ctx.start_soon(later)
