"""Debounce: one user's quick messages become one turn; nothing held is lost."""

from __future__ import annotations

import anyio
import pytest

from actors.thread.messages import Resume
from actors.thread.records import Outcome, ThreadKey
from actors.thread.settings import ThreadSettings
from tests.actors.thread.harness import open_threads
from tests.fakes.thread_ports import MemoryStore, ScriptedAgent

pytestmark = pytest.mark.anyio

GROUP = ThreadKey(-100)
SETTINGS = ThreadSettings(stall_timeout=5, run_timeout=30, debounce=1.0)


def agent() -> ScriptedAgent:
    return ScriptedAgent(chunk_delay=0.2)


async def test_quick_messages_of_one_user_become_one_turn_after_the_window() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        start = anyio.current_time()
        ids = [await threads.say(GROUP, "one", user_id=1)]
        await anyio.sleep(0.6)
        ids.append(await threads.say(GROUP, "two", user_id=1))
        await anyio.sleep(0.6)  # 1.2 s after the first: the second extended the window
        ids.append(await threads.say(GROUP, "three", user_id=1))
        last = anyio.current_time()
        await anyio.sleep(0.8)
        assert threads.agent.requests == [], "the window is still open"
        assert (await threads.status(GROUP)).queued == 3
        await threads.wait_idle(GROUP)
        [request] = threads.agent.requests
        assert request.inputs == ("one", "two", "three")
        assert request.user_ids == (1, 1, 1)
        assert anyio.current_time() - start >= 2.2
        assert last - start >= 1.2
        for message in ids:
            assert threads.store.outcome_of(GROUP, message) == [Outcome.ANSWERED]


async def test_a_message_from_another_user_closes_the_window_with_it() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        first = await threads.say(GROUP, "mine", user_id=1)
        other = await threads.say(GROUP, "theirs", user_id=2)
        assert len(threads.agent.requests) == 1, "started at once"
        await threads.wait_idle(GROUP)
        [request] = threads.agent.requests
        assert (request.inputs, request.user_ids) == (("mine", "theirs"), (1, 2))
        assert threads.store.outcome_of(GROUP, first) == [Outcome.ANSWERED]
        assert threads.store.outcome_of(GROUP, other) == [Outcome.ANSWERED]


async def test_commands_during_the_window_keep_what_it_holds() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        held = await threads.say(GROUP, "held", user_id=1)
        await threads.command(GROUP, "status", user_id=1)
        assert "1 message queued" in threads.outbox.texts(GROUP)[-1]
        skill = await threads.command(GROUP, "summarize", "this", user_id=1)
        await threads.wait_idle(GROUP)
        [request] = threads.agent.requests
        assert request.inputs == ("held", "/summarize this"), "a command's input ends it"
        for message in (held, skill):
            assert threads.store.outcome_of(GROUP, message) == [Outcome.ANSWERED]


async def test_stop_during_the_window_concludes_what_it_held() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        held = await threads.say(GROUP, "held", user_id=1)
        await threads.command(GROUP, "stop", user_id=1)
        assert threads.outbox.texts(GROUP)[-1] == "⏹ 1 queued message dropped."
        await anyio.sleep(2)  # the window's tick, if it came, would be stale
        assert threads.agent.requests == []
        assert threads.store.outcome_of(GROUP, held) == [Outcome.STOPPED]
        after = await threads.say(GROUP, "after", user_id=1)
        await threads.wait_idle(GROUP)
        assert threads.store.outcome_of(GROUP, after) == [Outcome.ANSWERED]


async def test_a_message_during_a_run_is_queued_not_debounced() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        await threads.say(GROUP, "first #slow:10", user_id=1)
        await threads.wait_idle(GROUP)  # after its window
        await threads.say(GROUP, "long #slow:5", user_id=1)
        await anyio.sleep(1.1)
        queued = await threads.say(GROUP, "queued", user_id=1)
        await threads.wait_idle(GROUP)
        assert [r.inputs for r in threads.agent.requests][-1] == ("queued",)
        assert threads.store.outcome_of(GROUP, queued) == [Outcome.ANSWERED]


async def test_held_messages_survive_a_restart_and_start_at_once() -> None:
    store = MemoryStore()
    settings = ThreadSettings(stall_timeout=5, run_timeout=30, debounce=30.0)
    async with open_threads(settings, store=store, agent=agent()) as threads:
        held = [await threads.say(GROUP, f"held {n}", user_id=1) for n in range(2)]
        assert [p.message_id for p in store.records[GROUP].queued] == held, "saved"
    async with open_threads(settings, store=store, agent=agent()) as threads:
        start = anyio.current_time()
        await threads.supervisor.ref_for(GROUP).send(Resume(), control=True)
        await threads.wait_idle(GROUP)
        assert anyio.current_time() - start < 5, "not another window"
        [request] = threads.agent.requests
        assert request.inputs == ("held 0", "held 1")
        for message in held:
            assert threads.store.outcome_of(GROUP, message) == [Outcome.ANSWERED]
