"""What an idle thread keeps in memory: no run. The last run is kept only while it may still
be unwinding (a new run waits for it), and let go of once it has (its report arrived)."""

from __future__ import annotations

import gc
import itertools

import anyio
import pytest

from actors.thread.records import Outcome, ThreadKey
from actors.thread.run import Run
from actors.thread.settings import ThreadSettings
from tests.actors.thread.harness import open_threads
from tests.fakes.thread_ports import ScriptedAgent

pytestmark = pytest.mark.anyio

DM = ThreadKey(4242)
SETTINGS = ThreadSettings(stall_timeout=5, run_timeout=60)
_texts = itertools.count()


def unique(text: str) -> str:
    """A text no other test's run has (the runs are found among every live object)."""
    return f"{text} {next(_texts)} {id(_texts)}"


def runs_of(text: str) -> list[Run]:
    """The live runs whose inputs include ``text``."""
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, Run) and text in _inputs(o)]


def _inputs(run: Run) -> list[str]:
    return [p.text for p in run.inputs]


async def test_an_idle_thread_keeps_no_run() -> None:
    first, second = unique("hello"), unique("again")
    async with open_threads(SETTINGS) as threads:
        answered = await threads.say(DM, first)
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, answered) == [Outcome.ANSWERED]
        assert runs_of(first) == [], "the answered run was let go of"
        await threads.say(DM, second)
        await threads.wait_idle(DM)
        assert runs_of(second) == []


async def test_a_cancelled_run_is_kept_while_it_unwinds_then_let_go_of() -> None:
    first, later = unique("soon done"), unique("later")
    async with open_threads(SETTINGS, agent=ScriptedAgent(chunk_delay=0)) as threads:
        threads.outbox.finish_delay = 1.0  # delivering the answer takes a while
        stopped = await threads.say(DM, first)
        assert [s.state for s in threads.outbox.streams] == ["open"], "being delivered"
        await threads.command(DM, "stop")  # cancels it: it aborts its answer, then reports
        assert len(runs_of(first)) == 1, "unwinding: kept, so that a new run waits for it"
        queued = await threads.say(DM, later)
        assert len(threads.outbox.streams) == 1, "the new run waits for it to unwind"
        await threads.wait_idle(DM)
        with anyio.fail_after(10):
            while runs_of(first) or runs_of(later):  # the reports are on their way
                await anyio.sleep(0.05)
        assert threads.store.outcome_of(DM, stopped) == [Outcome.STOPPED]
        assert threads.store.outcome_of(DM, queued) == [Outcome.ANSWERED]
        assert [s.state for s in threads.outbox.streams] == ["aborted", "finished"]


async def test_a_run_stopped_while_it_waits_for_an_unwinding_one_still_outlasts_it() -> None:
    """Run B, stopped while it waits for run A to unwind, ends only after A has: else run C,
    which waits for B alone, would run beside A (two runs in one thread)."""
    async with open_threads(SETTINGS, agent=ScriptedAgent(chunk_delay=0)) as threads:
        threads.outbox.finish_delay = 2.0  # A's answer takes a while to deliver
        first = await threads.say(DM, unique("first"))
        await threads.command(DM, "stop")  # A unwinds: its delivery goes on, shielded
        second = await threads.say(DM, unique("second"))  # B waits for A
        await threads.command(DM, "stop")  # B is stopped while it waits
        third = await threads.say(DM, unique("third"))  # C waits for B
        await anyio.sleep(0.5)
        assert [s.state for s in threads.outbox.streams] == ["open"], "a run beside A"
        await threads.wait_idle(DM)
        with anyio.fail_after(10):
            while len(threads.outbox.streams) < 2 or threads.outbox.streams[-1].state == "open":
                await anyio.sleep(0.05)
        assert threads.store.outcome_of(DM, first) == [Outcome.STOPPED]
        assert threads.store.outcome_of(DM, second) == [Outcome.STOPPED]
        assert threads.store.outcome_of(DM, third) == [Outcome.ANSWERED]
        assert [s.state for s in threads.outbox.streams] == ["aborted", "finished"]
