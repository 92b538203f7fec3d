"""SIGTERM and SIGINT stop the gateway gracefully: the same stop as the end of ``serve``.

Rules:

* The first SIGTERM or SIGINT is one log line (``stopping on SIGTERM: ...``) and sets the stop
  event: the gateway stops taking updates, lets the threads drain, sends what they owe, and
  the process exits 0. As PID 1 in a container, the handler is what makes SIGTERM work at all
  (the kernel ignores signals PID 1 has no handler for).
* The stop takes ``STOP_TIMEOUT`` seconds at most (Docker kills after 10 s); a second signal
  ends it at once. Either way the drain is cancelled, and what the threads still held stays in
  the inbox for the next start (logged).
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from loguru import logger

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_TIMEOUT = 8.0
"""Seconds a graceful stop may take before it is cut short."""


async def run_until_signalled(
    main: Callable[[anyio.Event], Awaitable[None]], stop_timeout: float = STOP_TIMEOUT
) -> None:
    """Run ``main(stop)``; ``stop`` is set by the first stop signal, after which ``main`` has
    ``stop_timeout`` seconds (or until a second signal) before it is cancelled."""
    stop = anyio.Event()
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with anyio.create_task_group() as task_group:
            with anyio.CancelScope() as scope:
                task_group.start_soon(_watch, signals, stop, scope, stop_timeout)
                await main(stop)
            if scope.cancelled_caught:
                logger.warning(
                    "stopped before the drain ended: unanswered messages are replayed at the "
                    "next start"
                )
            task_group.cancel_scope.cancel()


async def _watch(
    signals: AsyncIterator[signal.Signals],
    stop: anyio.Event,
    scope: anyio.CancelScope,
    stop_timeout: float,
) -> None:
    async for number in signals:
        name = signal.Signals(number).name
        if not stop.is_set():
            logger.info(
                "stopping on {name}: draining (at most {s:g}s), then exiting",
                name=name,
                s=stop_timeout,
            )
            stop.set()
            scope.deadline = anyio.current_time() + stop_timeout
        else:
            logger.warning("{name} again: stopping now", name=name)
            scope.cancel()


async def unless_stopped(stop: anyio.Event, func: Callable[[], Awaitable[object]]) -> None:
    """Run ``func`` until it returns or ``stop`` is set, whichever comes first."""
    async with anyio.create_task_group() as task_group:

        async def run() -> None:
            await func()
            task_group.cancel_scope.cancel()

        task_group.start_soon(run)
        await stop.wait()
        task_group.cancel_scope.cancel()
