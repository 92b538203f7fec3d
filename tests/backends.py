"""The trio backend the async tests run on: a ``MockClock(autojump_threshold=0)``."""

from __future__ import annotations

import time
from typing import Any

import trio
from trio.testing import MockClock


def trio_mockclock() -> tuple[str, dict[str, Any]]:
    """anyio's backend spec for trio with a clock that jumps whenever all tasks wait."""
    return ("trio", {"clock": MockClock(autojump_threshold=0), "instruments": [YieldGIL()]})


class YieldGIL(trio.abc.Instrument):
    """Lets a worker thread run while every task waits for it.

    With ``autojump_threshold=0`` (or a task in ``wait_all_tasks_blocked``) and a worker
    thread under way, trio polls for I/O with a zero timeout again and again; the loop then
    holds the GIL nearly all the time, and the worker thread (the store's) waits up to a
    switch interval for each of its many GIL takes: a write of a few hundred statements took
    seconds. Sleeping a tenth of a millisecond of real time after such a poll (nothing
    runnable) changes no virtual time.
    """

    def after_io_wait(self, timeout: float) -> None:
        if timeout == 0:
            stats = trio.lowlevel.current_statistics()
            if not stats.tasks_runnable:
                time.sleep(0.0001)
