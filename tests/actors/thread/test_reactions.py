"""Reactions: 👀 on a message queued behind a run, cleared once it is concluded."""

from __future__ import annotations

import pytest

from actors.thread.messages import Resume
from actors.thread.records import Outcome, ThreadKey
from actors.thread.settings import ThreadSettings
from tests.actors.thread.harness import open_threads
from tests.fakes.thread_ports import MemoryStore, ScriptedAgent

pytestmark = pytest.mark.anyio

DM = ThreadKey(42)
SETTINGS = ThreadSettings(stall_timeout=5, run_timeout=30, reactions=True)


def agent() -> ScriptedAgent:
    return ScriptedAgent(chunk_delay=0.2)


async def test_a_queued_message_gets_eyes_until_it_is_answered() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        first = await threads.say(DM, "long #slow:5")
        second = await threads.say(DM, "second")
        third = await threads.say(DM, "third")
        assert threads.outbox.reactions == [(DM, second, "👀"), (DM, third, "👀")]
        assert threads.store.records[DM].queued[0].reacted, "the mark is saved"
        await threads.wait_idle(DM)
        assert threads.outbox.reactions[2:] == [(DM, second, None), (DM, third, None)]
        assert first not in [m for _, m, _ in threads.outbox.reactions], "it was not queued"
        assert threads.store.outcome_of(DM, second) == [Outcome.ANSWERED]


async def test_reactions_are_off_unless_configured() -> None:
    async with open_threads(ThreadSettings(stall_timeout=5), agent=agent()) as threads:
        await threads.say(DM, "long #slow:3")
        await threads.say(DM, "second")
        await threads.wait_idle(DM)
        assert threads.outbox.reactions == []


async def test_eyes_are_cleared_for_a_stopped_or_discarded_message() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        await threads.say(DM, "long #slow:50")
        stopped = await threads.say(DM, "stopped")
        await threads.command(DM, "stop")
        await threads.say(DM, "long #slow:50")
        discarded = await threads.say(DM, "discarded")
        await threads.command(DM, "new")
        assert threads.outbox.reactions == [
            (DM, stopped, "👀"),
            (DM, stopped, None),
            (DM, discarded, "👀"),
            (DM, discarded, None),
        ]
        assert threads.store.outcome_of(DM, discarded) == [Outcome.DISCARDED_BY_RESET]


async def test_eyes_shown_before_a_restart_are_cleared_after_it() -> None:
    store = MemoryStore()
    async with open_threads(SETTINGS, store=store, agent=agent()) as threads:
        await threads.say(DM, "long #slow:50")
        queued = await threads.say(DM, "queued")
        assert threads.outbox.reactions == [(DM, queued, "👀")]
    async with open_threads(SETTINGS, store=store, agent=agent()) as threads:
        await threads.supervisor.ref_for(DM).send(Resume(), control=True)
        await threads.wait_idle(DM, timeout=120)
        assert threads.outbox.reactions == [(DM, queued, None)], "once, by the new incarnation"
        assert threads.store.final_outcomes()[(DM, queued)] == 1


async def test_a_failing_reaction_never_stops_the_thread() -> None:
    async with open_threads(SETTINGS, agent=agent()) as threads:
        threads.outbox.fail_reacts = True
        await threads.say(DM, "long #slow:3")
        second = await threads.say(DM, "second")
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, second) == [Outcome.ANSWERED]
        assert threads.outbox.reactions == []
