"""A trio event loop in a background thread whose clock moves only when told to.

Hypothesis state machines are synchronous; this lets each rule run a step on a loop that
persists between rules, with time advanced deterministically by the rules themselves.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Any, TypeVar

import trio
import trio.testing
from anyio.from_thread import BlockingPortal, start_blocking_portal

from tests.backends import YieldGIL

T = TypeVar("T")

#: Granularity of simulated time: timers fire within one step of their deadline.
STEP = 0.05


class ClockedLoop:
    def __init__(self) -> None:
        self.clock = trio.testing.MockClock(rate=0)
        self._stack = ExitStack()
        self.portal: BlockingPortal = self._stack.enter_context(
            start_blocking_portal(
                "trio", backend_options={"clock": self.clock, "instruments": [YieldGIL()]}
            )
        )

    def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` on the loop (sync), then let every task run until blocked."""
        return self.portal.call(self._run_and_settle, func, *args)  # type: ignore[no-any-return]

    def call_async(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await ``func(*args)`` on the loop, then let every task run until blocked."""
        return self.portal.call(self._await_and_settle, func, *args)  # type: ignore[no-any-return]

    def advance(self, seconds: float, step: float = STEP) -> None:
        """Let ``seconds`` of simulated time pass, in steps, running every task in between."""
        self.portal.call(self._advance, seconds, step)

    def exit(self, context: Any) -> None:
        """Leave ``context`` (a portal-wrapped async context manager), letting time jump
        whenever every task waits, so that a drain with a deadline can end."""
        self.portal.call(setattr, self.clock, "autojump_threshold", 0)  # set on the loop
        try:
            context.__exit__(None, None, None)
        finally:
            self.portal.call(setattr, self.clock, "autojump_threshold", math.inf)

    def close(self) -> None:
        """Cancel whatever still runs on the loop, and stop it."""
        self.portal.call(self.portal.stop, True)
        self._stack.close()

    async def _run_and_settle(self, func: Callable[..., T], *args: Any) -> T:
        result = func(*args)
        await trio.testing.wait_all_tasks_blocked()
        return result

    async def _await_and_settle(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        result = await func(*args)
        await trio.testing.wait_all_tasks_blocked()
        return result

    async def _advance(self, seconds: float, step: float) -> None:
        end = self.clock.current_time() + seconds
        await trio.testing.wait_all_tasks_blocked()
        while self.clock.current_time() < end:
            self.clock.jump(min(step, end - self.clock.current_time()))
            await trio.testing.wait_all_tasks_blocked()
