"""The zombie thread (docs/architecture.md, "Why this exists"), step by step. Stays forever.

A forum with topics 1, 2 and 3. A long run in topic 2; the reset skill ``/cc`` arrives
mid-run while the last API key gets HTTP 402. Afterwards topic 2 must still answer, and
topics 1 and 3 must never notice.
"""

from __future__ import annotations

import anyio
import pytest

from actors.thread.messages import CredentialsAvailable, FailureKind, RunFailed
from actors.thread.records import Outcome, ThreadKey, ThreadPhase
from actors.thread.settings import ThreadSettings
from tests.actors.thread.harness import Threads, open_threads
from tests.fakes.thread_ports import ScriptedAgent

pytestmark = pytest.mark.anyio

CHAT = -100123
T1, T2, T3 = (ThreadKey(CHAT, n) for n in (1, 2, 3))
SETTINGS = ThreadSettings(
    reset_commands=frozenset({"new", "reset", "cc"}), stall_timeout=30, run_timeout=300
)


async def bystanders_answer(threads: Threads, text: str) -> None:
    for key in (T1, T3):
        await threads.say(key, text)
    await threads.wait_idle(T1, T3)


async def recover_pool(threads: Threads) -> None:
    threads.agent.exhausted = False
    threads.supervisor.broadcast(CredentialsAvailable(), control=True)
    await anyio.wait_all_tasks_blocked()


@pytest.mark.parametrize("order", ["reset-first", "exhaustion-first", "stale-report"])
async def test_reset_during_run_with_exhausted_pool_does_not_kill_the_thread(order: str) -> None:
    agent = ScriptedAgent(chunk_delay=0.2, retry_after=600)
    async with open_threads(SETTINGS, agent=agent) as threads:
        await bystanders_answer(threads, "hello")

        # Step 1: turn N starts in topic 2 and streams slowly.
        long_task = await threads.say(T2, "a long task #slow:10")
        await anyio.sleep(0.5)
        status = await threads.status(T2)
        assert status.phase is ThreadPhase.RUNNING
        old_generation = status.generation

        # Step 2: the reset skill and the last key's 402 coincide.
        if order == "exhaustion-first":
            agent.exhausted = True  # the run's next chunk hits 402: the thread parks
            await anyio.sleep(0.3)
            assert (await threads.status(T2)).phase is ThreadPhase.PARKED
            await threads.command(T2, "cc")
        else:
            await threads.command(T2, "cc")
            agent.exhausted = True
            if order == "stale-report":
                # Turn N reports exhaustion *after* the reset: the one place that knows the
                # current run ignores it.
                stale = RunFailed(1, old_generation, FailureKind.EXHAUSTED, "HTTP 402", 600)
                await threads.supervisor.ref_for(T2).send(stale, control=True)
                await anyio.wait_all_tasks_blocked()
        status = await threads.status(T2)
        assert status.generation == old_generation + 1
        assert status.phase is ThreadPhase.IDLE, "the reset leaves nothing running or parked"

        # Step 3: the next message while the pool is still dry gets an explicit notice.
        during = await threads.say(T2, "are you there?")
        assert threads.store.outcome_of(T2, during) == [Outcome.PARKED]
        notice = threads.outbox.texts(T2)[-1]
        assert "All API keys are used up" in notice
        assert "expected in about 10 minutes" in notice

        # Step 4: a key is usable again: the parked message is answered, and so is the next;
        # topics 1 and 3 go on as if nothing happened.
        await recover_pool(threads)
        await bystanders_answer(threads, "still fine?")
        await threads.wait_idle(T2)
        after = await threads.say(T2, "and now?")
        await threads.wait_idle(T2)

        answers = threads.outbox.answers(T2)
        assert answers[-2:] == ["[0] answer to are you there?", "[0] answer to and now?"]
        assert threads.store.outcome_of(T2, during) == [Outcome.PARKED, Outcome.ANSWERED]
        assert threads.store.outcome_of(T2, after) == [Outcome.ANSWERED]
        assert threads.store.outcome_of(T2, long_task)[-1] is Outcome.DISCARDED_BY_RESET
        reset_notices = [t for t in threads.outbox.texts(T2) if "New session" in t]
        assert reset_notices == ["🆕 New session started. 1 earlier message discarded unanswered."]
        assert threads.agent.max_active[T2] == 1

        # Topics 1 and 3 never noticed: only answers, no notices at all.
        for key in (T1, T3):
            assert threads.outbox.texts(key) == []
            assert threads.outbox.answers(key) == [
                "[0] answer to hello",
                "[0] answer to still fine?",
            ]

        # Every message has exactly one final outcome.
        assert set(threads.store.final_outcomes().values()) == {1}
        assert threads.letters == []
