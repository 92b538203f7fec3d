"""Group activation: unaddressed messages, ``/activation``, and its per-user siblings."""

from __future__ import annotations

import anyio
import pytest

from actors.thread import texts
from actors.thread.actor import ThreadActor
from actors.thread.messages import ActivationChanged, CredentialsAvailable, UserMessage
from actors.thread.records import Outcome, ThreadKey
from actors.thread.settings import Activation, ThreadSettings
from gateway.telegram.siblings import ThreadSiblings
from tests.actors.thread.harness import open_threads
from tests.fakes.thread_ports import MemoryStore, RecordingOutbox, ScriptedAgent

pytestmark = pytest.mark.anyio

GROUP = ThreadKey(-100)
TOPIC = ThreadKey(-100, 7)
DM = ThreadKey(42)
SETTINGS = ThreadSettings(stall_timeout=5, run_timeout=30, reactions=True)


async def test_a_group_answers_only_messages_addressed_to_the_bot_by_default() -> None:
    async with open_threads(SETTINGS) as threads:
        ignored = await threads.say(GROUP, "chatting among ourselves", addressed=False)
        await threads.wait_idle(GROUP)
        assert threads.agent.requests == [], "no run"
        assert (threads.outbox.notices, threads.outbox.streams) == ([], []), "no reply"
        assert threads.store.outcome_of(GROUP, ignored) == [Outcome.NOT_ADDRESSED]
        asked = await threads.say(GROUP, "what is 2+2?")
        await threads.wait_idle(GROUP)
        assert [r.message_ids for r in threads.agent.requests] == [(asked,)]
        assert threads.store.outcome_of(GROUP, asked) == [Outcome.ANSWERED]


async def test_a_private_chat_answers_every_message() -> None:
    async with open_threads(SETTINGS) as threads:
        message = await threads.say(DM, "hi", addressed=False)  # routing never does this
        await threads.wait_idle(DM)
        assert threads.store.outcome_of(DM, message) == [Outcome.ANSWERED]


async def test_an_unaddressed_message_is_accepted_once_and_never_queued() -> None:
    async with open_threads(SETTINGS, agent=ScriptedAgent(chunk_delay=0.2)) as threads:
        await threads.say(GROUP, "long #slow:20")
        ignored = await threads.say(GROUP, "side talk", addressed=False)
        again = UserMessage(ignored, "side talk", addressed=False)  # the retry after a crash
        await threads.supervisor.ref_for(GROUP).send(again)
        assert (await threads.status(GROUP)).queued == 0, "not queued behind the run"
        await threads.wait_idle(GROUP)
        assert threads.store.outcome_of(GROUP, ignored) == [Outcome.NOT_ADDRESSED]
        assert threads.outbox.reactions == [], "no 👀 for what the bot does not answer"
        assert ignored in threads.store.records[GROUP].recent


async def test_activation_is_shown_switched_by_an_admin_and_kept_across_a_restart() -> None:
    store = MemoryStore()
    async with open_threads(SETTINGS, store=store) as threads:
        await threads.command(GROUP, "activation")
        assert threads.outbox.texts(GROUP)[-1] == texts.activation_shown(
            Activation.MENTION, topic=False
        )
        refused = await threads.command(GROUP, "activation", "always", user_id=5)
        assert "Only the gateway's admins" in threads.outbox.texts(GROUP)[-1]
        assert store.activations == {}
        assert threads.store.outcome_of(GROUP, refused) == [Outcome.ANSWERED]
        await threads.command(GROUP, "activation", "sometimes", admin=True)
        assert threads.outbox.texts(GROUP)[-1].startswith("Usage: /activation always|mention")
        await threads.command(GROUP, "activation", "ALWAYS", user_id=1, admin=True)
        assert threads.outbox.texts(GROUP)[-1] == "✅ This chat now answers every message."
        assert store.activations == {GROUP: Activation.ALWAYS}
        answered = await threads.say(GROUP, "no mention", addressed=False)
        await threads.wait_idle(GROUP)
        assert threads.store.outcome_of(GROUP, answered) == [Outcome.ANSWERED]
        await threads.command(GROUP, "status")
        assert "activation always" in threads.outbox.texts(GROUP)[-1]
    async with open_threads(SETTINGS, store=store) as threads:
        again = await threads.say(GROUP, "still no mention", addressed=False)
        await threads.wait_idle(GROUP)
        assert threads.store.outcome_of(GROUP, again) == [Outcome.ANSWERED], "loaded at start"


async def test_a_topic_is_its_own_conversation() -> None:
    async with open_threads(SETTINGS) as threads:
        await threads.command(TOPIC, "activation", "always", admin=True)
        assert threads.outbox.texts(TOPIC)[-1] == "✅ This topic now answers every message."
        other = await threads.say(GROUP, "in the General topic", addressed=False)
        await threads.wait_idle(GROUP)
        assert threads.store.outcome_of(GROUP, other) == [Outcome.NOT_ADDRESSED]
        assert threads.store.activations == {TOPIC: Activation.ALWAYS}


async def test_activation_in_a_private_chat_says_it_always_answers() -> None:
    async with open_threads(SETTINGS) as threads:
        await threads.command(DM, "activation", "mention", admin=True)
        assert threads.outbox.texts(DM)[-1] == texts.ACTIVATION_PRIVATE
        await threads.command(DM, "status")
        assert "activation" not in threads.outbox.texts(DM)[-1]
        assert threads.store.activations == {}


async def test_a_failed_activation_write_crashes_the_command_and_its_retry_switches() -> None:
    async with open_threads(SETTINGS) as threads:
        threads.store.fail_saves = 1
        switch = await threads.command(GROUP, "activation", "always", admin=True)
        await threads.wait_idle(GROUP)
        assert threads.store.activations == {GROUP: Activation.ALWAYS}, "the retry wrote it"
        assert threads.store.outcome_of(GROUP, switch) == [Outcome.ANSWERED]
        assert threads.outbox.texts(GROUP) == ["✅ This chat now answers every message."]


async def test_help_lists_activation_in_groups_only_and_usage_everywhere() -> None:
    async with open_threads(SETTINGS) as threads:
        await threads.command(GROUP, "help")
        await threads.command(DM, "help")
        [group_help], [dm_help] = threads.outbox.texts(GROUP), threads.outbox.texts(DM)
        assert "/activation always|mention" in group_help
        assert "/activation" not in dm_help
        assert "/usage" in group_help
        assert "/usage" in dm_help


async def test_per_user_threads_of_a_group_share_an_activation_switch() -> None:
    alice, bob = ThreadKey(-100, None, 1), ThreadKey(-100, None, 2)
    elsewhere = ThreadKey(-200, None, 2)
    siblings = ThreadSiblings()
    async with open_threads(SETTINGS, siblings=siblings) as threads:
        siblings.bind(threads.supervisor)
        before = await threads.say(bob, "hello?", addressed=False)
        await threads.say(elsewhere, "hello?", addressed=False)
        await threads.command(alice, "activation", "always", user_id=1, admin=True)
        after = await threads.say(bob, "now?", addressed=False)
        still = await threads.say(elsewhere, "and here?", addressed=False)
        await threads.wait_idle(alice, bob, elsewhere)
        assert threads.store.outcome_of(bob, before) == [Outcome.NOT_ADDRESSED]
        assert threads.store.outcome_of(bob, after) == [Outcome.ANSWERED], "told by alice's"
        assert threads.store.outcome_of(elsewhere, still) == [Outcome.NOT_ADDRESSED]
        assert threads.store.activations == {ThreadKey(-100): Activation.ALWAYS}
        carol = ThreadKey(-100, None, 3)  # not live then: reads it at start
        late = await threads.say(carol, "me too", addressed=False)
        await threads.wait_idle(carol)
        assert threads.store.outcome_of(carol, late) == [Outcome.ANSWERED]


async def test_siblings_before_the_supervisor_is_bound_log_and_return() -> None:
    ThreadSiblings().tell(GROUP, ActivationChanged(GROUP, Activation.ALWAYS))  # no raise


async def test_a_dormant_thread_wants_only_its_own_conversations_activation() -> None:
    key = ThreadKey(-100, None, 1)
    actor = ThreadActor(key, ScriptedAgent(), RecordingOutbox(), MemoryStore(), SETTINGS)
    assert actor.wants(ActivationChanged(ThreadKey(-100), Activation.ALWAYS))
    assert not actor.wants(ActivationChanged(ThreadKey(-100, 3), Activation.ALWAYS))
    assert not actor.wants(ActivationChanged(ThreadKey(-200), Activation.ALWAYS))
    assert not actor.wants(CredentialsAvailable()), "not parked"
    await anyio.lowlevel.checkpoint()
