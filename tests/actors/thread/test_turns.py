"""The Stop button (``StopRun``): the current run only, never a later one; safe while the
run reports, and for the orphan run a restart left."""

from __future__ import annotations

import anyio
import pytest

from actors import RestartPolicy, SupervisorConfig
from actors.thread.messages import StopRun
from actors.thread.records import Outcome, ThreadKey, ThreadPhase
from actors.thread.settings import BusyPolicy, ThreadSettings
from tests.actors.thread.harness import Threads, open_threads
from tests.fakes.thread_ports import ScriptedAgent

pytestmark = pytest.mark.anyio

DM = ThreadKey(42)
SETTINGS = ThreadSettings(stall_timeout=5, run_timeout=60)


def agent() -> ScriptedAgent:
    return ScriptedAgent(chunk_delay=0.2)


def run_id(threads: Threads, index: int = -1) -> int:
    stream_run = threads.outbox.streams[index].run_id
    assert stream_run is not None, "open_stream is given the run id"
    return stream_run


async def test_the_stop_button_stops_the_current_run_and_the_queue_goes_on() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        first = await threads.say(DM, "long #slow:50")
        queued = await threads.say(DM, "later")
        assert await threads.stop(DM, run_id(threads), user_id=9) is True
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, first) == [Outcome.STOPPED]
        assert [d for _, m, _, d in threads.store.outcomes if m == first] == ["stop button"]
        assert [s.state for s in threads.outbox.streams] == ["aborted", "finished"], "cut off"
        assert [r.inputs for r in threads.agent.requests] == [("long #slow:50",), ("later",)]
        assert threads.store.outcome_of(DM, queued) == [Outcome.ANSWERED]
        assert not any("⚠️" in t or "⏹" in t for t in threads.outbox.texts(DM)), (
            "the button's answer says it (answerCallbackQuery), the chat gets no notice"
        )


async def test_a_stale_stop_button_changes_nothing() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        done = await threads.say(DM, "quick")
        await threads.wait_idle(DM)
        old = run_id(threads)
        current = await threads.say(DM, "long #slow:10")
        assert (await threads.status(DM)).phase is ThreadPhase.RUNNING
        assert await threads.stop(DM, old) is False, "never a later run"
        assert await threads.stop(DM, 10_000) is False
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, done) == [Outcome.ANSWERED]
        assert threads.store.outcome_of(DM, current) == [Outcome.ANSWERED]
        assert [s.state for s in threads.outbox.streams] == ["finished", "finished"]
        assert await threads.stop(DM, run_id(threads)) is False, "it has ended"


async def test_a_second_press_while_the_run_unwinds_is_harmless() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        first = await threads.say(DM, "long #slow:50")
        threads.outbox.finish_delay = 1.0  # aborting the answer takes a while
        run = run_id(threads)
        async with anyio.create_task_group() as tg:
            tg.start_soon(threads.stop, DM, run)
            tg.start_soon(threads.stop, DM, run)
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, first) == [Outcome.STOPPED]


async def test_a_press_while_the_runs_report_is_on_its_way_leaves_it_answered() -> None:
    async with open_threads(SETTINGS, agent=ScriptedAgent(chunk_delay=0.3)) as threads:
        first = await threads.say(DM, "soon done #slow:2")  # 0.3 s
        run = run_id(threads)
        threads.store.save_delay = 1.0  # the thread is busy with the next message meanwhile
        second = await threads.say(DM, "next")
        answers: list[bool] = []

        async def press() -> None:
            answers.append(await threads.stop(DM, run))

        async with anyio.create_task_group() as tg:
            tg.start_soon(press)  # queued before the run's report; handled after it ended
        threads.store.save_delay = 0.0
        await threads.wait_idle(DM)
        assert answers == [False], "too late: its answer was delivered"
        assert threads.store.outcome_of(DM, first) == [Outcome.ANSWERED]
        assert threads.outbox.streams[0].state == "finished"
        assert threads.store.outcome_of(DM, second) == [Outcome.ANSWERED]


async def test_a_press_for_the_orphan_of_a_crash_stops_it_instead_of_retrying_it() -> None:
    config = SupervisorConfig(
        idle_ttl=None,
        stall_timeout=5,
        drain_timeout=1,
        restart=RestartPolicy(backoff_initial=0.05, backoff_max=0.1),
    )
    async with open_threads(SETTINGS, config, agent()) as threads:
        first = await threads.say(DM, "long #slow:50")
        run = run_id(threads)
        threads.store.save_delay, threads.store.fail_saves = 1.0, 1
        second = threads.next_id + 1
        await threads.say_nowait(DM, "next")  # its write fails, after a second
        await anyio.sleep(0.1)
        answers: list[bool] = []

        async def press() -> None:
            answers.append(await threads.stop(DM, run))

        async with anyio.create_task_group() as tg:
            tg.start_soon(press)  # meets the run as the orphan of the crash
        threads.store.save_delay = 0.0
        with anyio.fail_after(10):
            while not threads.store.outcome_of(DM, second):  # retried after the restart
                await anyio.sleep(0.05)
        assert threads.supervisor.statistics().restarts == 1
        assert answers == [True]
        assert threads.store.outcome_of(DM, first) == [Outcome.STOPPED], "not retried"
        assert [r.inputs for r in threads.agent.requests] == [("long #slow:50",), ("next",)]
        assert threads.store.outcome_of(DM, second) == [Outcome.ANSWERED]


async def test_under_the_interrupt_policy_a_message_waits_for_a_stopped_run() -> None:
    settings = ThreadSettings(busy_policy=BusyPolicy.INTERRUPT, stall_timeout=5)
    async with open_threads(settings, agent=agent()) as threads:
        first = await threads.say(DM, "long #slow:50")
        threads.outbox.finish_delay = 1.0
        await threads.supervisor.ref_for(DM).send(StopRun(run_id(threads)))
        second = await threads.say(DM, "after the stop")
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, first) == [Outcome.STOPPED], "not merged back"
        assert [r.inputs for r in threads.agent.requests][-1] == ("after the stop",)
        assert threads.store.outcome_of(DM, second) == [Outcome.ANSWERED]


async def test_runs_are_asked_with_their_senders() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        await threads.say(DM, "one #slow:5", user_id=1)
        await threads.say(DM, "two", user_id=2)
        await threads.say(DM, "three", user_id=1)
        await threads.wait_idle(DM)
        assert [r.user_ids for r in threads.agent.requests] == [(1,), (2, 1)]
        assert threads.outbox.streams[1].run_id == 2
