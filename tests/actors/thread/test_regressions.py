"""Regressions of issue 16: paths on which a message got no outcome, two outcomes, or an
answer that the thread had already called unanswered. Each failed on the code before the fix.

Every test ends by checking the promise itself: each message the thread accepted has
exactly one final outcome (in the store, or as a dead letter the gateway answers).
"""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from actors import ChildState, DeadLetterReason, RestartPolicy, SupervisorConfig
from actors.thread.records import Outcome, ThreadKey, ThreadPhase
from actors.thread.settings import ThreadSettings
from tests.actors.thread.harness import Threads, open_threads
from tests.fakes.thread_ports import MemoryStore, ScriptedAgent

pytestmark = pytest.mark.anyio

DM = ThreadKey(42)
SETTINGS = ThreadSettings(stall_timeout=5, run_timeout=60, reset_commands=frozenset({"new"}))


def finals(threads: Threads) -> Counter[int]:
    """Final outcomes per message id: the store's, and the dead letters' (the gateway answers
    each of those with a reply and an outcome)."""
    counted = Counter(m for k, m, o, _ in threads.store.outcomes if k == DM and o.final)
    counted.update(
        getattr(letter.message, "message_id", -1)
        for letter in threads.letters
        if letter.reason is not DeadLetterReason.SHUTDOWN
    )
    return counted


def assert_one_outcome_each(threads: Threads, *message_ids: int) -> None:
    counted = finals(threads)
    assert {m: counted[m] for m in message_ids} == dict.fromkeys(message_ids, 1), counted


async def test_a_failed_thread_concludes_the_inputs_its_record_held_with_a_notice() -> None:
    """Finding 1: marked failed, a thread's in-flight and queued inputs got no outcome."""
    config = SupervisorConfig(
        idle_ttl=None,
        stall_timeout=5,
        drain_timeout=1,
        restart=RestartPolicy(
            max_restarts=2, within=60, backoff_initial=0.05, backoff_max=0.1, failed_cooldown=3
        ),
    )
    agent = ScriptedAgent(chunk_delay=0.5)
    async with open_threads(SETTINGS, config, agent) as threads:
        in_flight = await threads.say(DM, "first #slow:40")
        queued = await threads.say(DM, "second")
        threads.store.fail_saves = 10**6  # the disk is gone: every handler crashes
        later = [await threads.say(DM, f"later {n}") for n in range(3)]
        with anyio.fail_after(30):
            while not any(
                c.key == DM and c.state is ChildState.FAILED
                for c in threads.supervisor.status().children
            ):
                await anyio.sleep(0.01)
        threads.store.fail_saves = 0  # it comes back
        await anyio.sleep(10)  # past the cooldown
        assert_one_outcome_each(threads, in_flight, queued, *later)
        for message in (in_flight, queued):
            assert threads.store.outcome_of(DM, message) == [Outcome.ERROR_REPLIED]
        [told] = [text for _, text, _ in threads.outbox.notices if "could not be answered" in text]
        assert "messages could not be answered" in told, "one notice, with the count"
        record = threads.store.records[DM]
        assert (record.in_flight, record.queued) == ((), ())


async def test_a_retried_reset_bumps_the_generation_once() -> None:
    """Finding 2: a reset whose reply failed after its save was handled again on retry."""
    async with open_threads(SETTINGS) as threads:
        await threads.say(DM, "hello")
        await threads.wait_idle(DM)
        threads.outbox.fail_notices = 1  # the reset's reply fails: the chat sender failed
        reset = await threads.command(DM, "new")
        await anyio.sleep(1)
        await threads.wait_idle(DM)
        assert threads.store.generations[DM][-1] == 1, threads.store.generations[DM]
        assert_one_outcome_each(threads, reset)


async def test_a_retried_message_does_not_reach_the_agent_twice() -> None:
    """Finding 2: a message saved, then crashed by its notice, was queued again on retry."""
    agent = ScriptedAgent(chunk_delay=0.1, exhausted=True, retry_after=2)
    async with open_threads(SETTINGS, agent=agent) as threads:
        first = await threads.say(DM, "first")  # parks: no key is usable
        await anyio.sleep(0.2)
        threads.outbox.fail_notices = 1  # the "no key now" notice to the second fails
        second = await threads.say(DM, "second")
        await anyio.sleep(0.2)
        agent.exhausted = False
        await anyio.sleep(5)  # the parked thread retries on its timer
        await threads.wait_idle(DM)
        for request in agent.requests:
            assert len(request.inputs) == len(set(request.inputs)), request.inputs
        assert [r.inputs for r in agent.requests][-1] == ("first", "second")
        assert_one_outcome_each(threads, first, second)
        assert threads.store.outcome_of(DM, second)[-1] is Outcome.ANSWERED


async def test_a_failing_typing_indicator_does_not_crash_the_thread() -> None:
    """Finding 3: the keepalive's error crashed the thread and cancelled the live run."""
    async with open_threads(SETTINGS, agent=ScriptedAgent(chunk_delay=0.5)) as threads:
        threads.outbox.fail_keepalives = True
        message = await threads.say(DM, "a long one #slow:12")
        await anyio.sleep(1)
        await threads.wait_idle(DM)
        assert [s.state for s in threads.outbox.streams] == ["finished"]
        assert threads.supervisor.statistics().restarts == 0
        assert threads.store.outcome_of(DM, message) == [Outcome.ANSWERED]


async def test_a_run_cancelled_while_its_answer_is_delivered_is_not_shown_as_complete() -> None:
    """Finding 4: /new during the final edit let the complete answer stand after the notice
    said it was discarded."""
    async with open_threads(SETTINGS, agent=ScriptedAgent(chunk_delay=0.1)) as threads:
        threads.outbox.finish_delay = 2.0  # the last edit waits for the chat's pacing
        message = await threads.say(DM, "question #slow:3")
        await anyio.sleep(0.5)  # the agent is done; the answer is being delivered
        await threads.command(DM, "new")
        await anyio.sleep(3)
        await threads.wait_idle(DM)
        [stream] = threads.outbox.streams
        [outcome] = threads.store.outcome_of(DM, message)
        assert outcome is Outcome.DISCARDED_BY_RESET
        assert stream.state == "aborted", "the answer shown is marked cut off"


async def test_a_reply_cut_off_by_shutdown_is_still_sent() -> None:
    """Finding 6: at the drain deadline a concluded message's reply was cancelled: recorded as
    answered, the user never told."""
    config = SupervisorConfig(idle_ttl=None, stall_timeout=5, drain_timeout=0.5)
    store = MemoryStore()
    async with open_threads(SETTINGS, config, store=store) as threads:
        await threads.say(DM, "hello")
        await threads.wait_idle(DM)
        threads.outbox.notice_delay = 2.0  # the chat sender is busy with other topics
        status = await threads.command(DM, "status")
        outbox = threads.outbox
    assert store.outcome_of(DM, status) == [Outcome.ANSWERED]
    assert [reply_to for _, _, reply_to in outbox.notices] == [status], "the user was told"


async def test_a_message_cut_off_by_shutdown_before_its_save_is_handed_back() -> None:
    """Finding 6: a message whose handling the drain deadline cancelled before anything was
    written was neither concluded nor dead-lettered."""
    config = SupervisorConfig(idle_ttl=None, stall_timeout=5, drain_timeout=0.5)
    store = MemoryStore()
    async with open_threads(SETTINGS, config, store=store) as threads:
        await threads.say(DM, "hello")
        await threads.wait_idle(DM)
        store.save_delay = 3.0  # a slow disk
        message = await threads.say(DM, "late")
        letters = threads.letters
    assert not store.outcome_of(DM, message)
    assert [(getattr(d.message, "message_id", None), d.reason) for d in letters] == [
        (message, DeadLetterReason.SHUTDOWN)
    ], "handed back: the gateway replays it at the next start"


async def test_a_thread_restarted_after_delivering_does_not_answer_again() -> None:
    """The crash window between delivering an answer and recording it: the report that the
    crashed incarnation could not record is retried and concludes the run."""
    async with open_threads(SETTINGS, agent=ScriptedAgent(chunk_delay=0.2)) as threads:
        first = await threads.say(DM, "hi")
        await threads.wait_idle(DM)
        second = await threads.say(DM, "again #slow:2")
        await anyio.sleep(0.1)  # the run is under way, its start recorded
        threads.store.fail_saves = 1  # recording its answer fails once
        await anyio.sleep(2)
        await threads.wait_idle(DM)
        finished = [s for s in threads.outbox.streams if s.state == "finished"]
        assert [s.reply_to for s in finished] == [first, second], "one answer each"
        assert_one_outcome_each(threads, first, second)
        assert (await threads.status(DM)).phase is ThreadPhase.IDLE


def test_a_thread_failed_after_delivering_concludes_that_answer_as_answered() -> None:
    """Found by the thread machine at 1,000 examples: the answer was delivered, the store went
    down before it was recorded, the thread was marked failed, and its last word called the
    answered message unanswered. The report left in its mailbox now says it was answered."""
    from actors.thread.settings import BusyPolicy
    from tests.actors.thread.test_machine import ThreadMachine

    machine = ThreadMachine()
    machine.start(policy=BusyPolicy.QUEUE)
    machine.notices_block_or_flow_again()  # the reset's notice holds the thread 2 s
    machine.command(key=ThreadKey(-100, 1), name="new", with_input=True)  # "/new m1"
    machine.the_store_is_down_for(seconds=5.0)
    machine.teardown()  # the invariants at quiescence: m1 answered, once, and told so


def test_a_failed_threads_last_word_does_not_conclude_its_successors_input() -> None:
    """Found by the thread machine at 2,000 examples (``make fuzz``): the failed thread's last
    word kept retrying its write past the cooldown; the next message spawned a successor that
    answered it, and the last word, loading the successor's record, concluded that message as
    not answered too: two final outcomes. A child is now failed until its last word is done."""
    from actors.thread.settings import BusyPolicy
    from tests.actors.thread.test_machine import ThreadMachine

    machine = ThreadMachine()
    machine.start(policy=BusyPolicy.QUEUE)
    machine.the_next_store_writes_fail(writes=3)
    machine.command(key=ThreadKey(-100, 2), name="new", with_input=False)
    machine.the_store_is_down_for(seconds=2.0)
    machine.time_passes(seconds=6.0)
    machine.user_message(behaviour="#slow:3", key=ThreadKey(-100, 2))
    machine.teardown()  # the invariants: one final outcome for the message
