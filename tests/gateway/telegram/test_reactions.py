"""Reactions (``telegram.reactions``): set and cleared, paced below the texts that complete
answers, harmless in a chat that refuses them.

Real chat senders over the Bot API simulator (HTTP, Telegram's limits enforced), driven
through ``TelegramOutbox.react`` as the thread actor drives it. The end-to-end test through
the thread (👀 on a message queued behind a run) needs the thread actor's side of issue 19.
"""

from __future__ import annotations

import anyio
import pytest

from actors.thread.records import ThreadKey
from gateway.telegram.reactions import React, Reactions
from tests.gateway.logs import captured_logs
from tests.gateway.telegram.senders import DM, FORUM, sending, until, words

pytestmark = pytest.mark.anyio
EYES = "👀"
TOPIC = ThreadKey(FORUM, 4)


async def test_a_reaction_is_set_and_cleared() -> None:
    async with sending(reactions=True) as s:
        s.outbox.react(TOPIC, 501, EYES)
        await until(lambda: s.telegram.reactions.shown(FORUM, 501) == [EYES])
        s.outbox.react(TOPIC, 501, None)
        await until(lambda: s.telegram.reactions.shown(FORUM, 501) == [])
        assert s.telegram.reactions.history(FORUM, 501) == [[EYES], []]
        assert s.telegram.violations == 0


async def test_with_reactions_off_nothing_is_sent() -> None:
    async with sending(reactions=False) as s:
        s.outbox.react(TOPIC, 502, EYES)
        await s.outbox.notice(TOPIC, "after the reaction")
        await until(lambda: bool(s.messages(TOPIC)))
        await anyio.sleep(1.2)
        assert s.telegram.reactions.requests == 0


async def test_a_chat_that_refuses_reactions_gets_one_attempt_and_its_answers_go_on() -> None:
    async with sending(reactions=True) as s:
        s.telegram.reactions.forbid.add(FORUM)
        with captured_logs("WARNING") as logs:
            stream = s.outbox.open_stream(TOPIC, reply_to=600, run_id=3)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(s.stream, stream, words(40))
                for mid in range(601, 606):
                    s.outbox.react(TOPIC, mid, EYES)
                    await anyio.sleep(0.3)
                    s.outbox.react(TOPIC, mid, None)
            await stream.finish()
        [message] = s.messages(TOPIC)
        assert message.text == words(40)
        assert s.telegram.reactions.requests == 1
        refusals = [line for line in logs if "refuses the bot's reactions" in line]
        assert len(refusals) == 1, logs
        assert s.telegram.violations == 0


async def test_a_busy_groups_budget_goes_to_final_texts_before_reactions() -> None:
    """Three answers open in a group allowed 5 requests a minute: reactions keep one request
    back for each open answer's final text (as partial updates do), so every answer is
    shown whole as soon as it ends, and the reactions wait for the minute."""
    async with sending(reactions=True, group_per_minute=5) as s:
        keys = [ThreadKey(FORUM, t) for t in (5, 6, 7)]
        streams = [s.outbox.open_stream(k, run_id=10 + i) for i, k in enumerate(keys)]
        for stream in streams:
            await stream.append("the answer so far")
        for mid in range(700, 710):
            s.outbox.react(TOPIC, mid, EYES)
        await anyio.sleep(2.5)
        for stream in streams:
            await stream.append(" and its end")
        with anyio.fail_after(8):
            for stream in streams:
                await stream.finish()
        for key in keys:
            [message] = s.messages(key)
            assert message.text == "the answer so far and its end"
        assert s.telegram.reactions.requests <= 2, "reactions took the finals' budget"
        assert s.telegram.violations == 0


async def test_reactions_in_a_private_chat_wait_for_notices() -> None:
    key = ThreadKey(DM)
    async with sending(reactions=True) as s:
        await s.outbox.notice(key, "first a notice")
        await s.outbox.notice(key, "and another")
        s.outbox.react(key, 800, EYES)
        await until(lambda: s.telegram.reactions.shown(DM, 800) == [EYES])
        assert len(s.messages(key)) == 2, "the reaction went before the notices"


def test_clearing_a_reaction_not_sent_yet_sends_nothing() -> None:
    reactions = Reactions()
    assert reactions.take(React(TOPIC, 1, EYES))
    assert not reactions.take(React(TOPIC, 1, None))
    assert reactions.pending == 0
    assert reactions.take(React(TOPIC, 2, EYES))
    sent = reactions.next()
    assert sent is not None
    reactions.done(sent)
    assert reactions.take(React(TOPIC, 2, None)), "a reaction that went out is cleared"
    assert reactions.refuse() == 1
    assert not reactions.take(React(TOPIC, 3, EYES))
