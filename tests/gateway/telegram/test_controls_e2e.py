"""The Stop button, drafts and reactions through the whole gateway: the Bot API simulator
and the LLM simulator over HTTP, Telegram's limits enforced, ``telegram.streaming`` and
``telegram.reactions`` as an operator sets them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.thread.records import ThreadKey
from gateway.demo.botapi_sim import BotAPISimulator
from gateway.demo.model_sim import LLMSimulator
from gateway.telegram import callbacks
from tests.gateway.harness import running_gateway, wait_until
from tests.gateway.telegram.test_streaming import FORUM, answer_messages, scripted, words

pytestmark = pytest.mark.anyio
DM = 5400


async def test_groups_are_edited_while_private_chats_may_draft(tmp_path: Path) -> None:
    telegram = BotAPISimulator(enforce_limits=True)
    llm = LLMSimulator(default=scripted)
    async with running_gateway(tmp_path, telegram, llm, bot={"streaming": "auto"}) as run:
        asked = run.telegram.say("words 40 delay 0.05", chat_id=FORUM, topic=3)
        await wait_until(lambda: run.outcome(asked) == "answered", timeout=20)
        [message] = answer_messages(run, FORUM, 3)
        assert message.text == words(40)
        assert message.edits >= 1
        assert telegram.drafts.requests == 0
        assert telegram.violations == 0


async def test_reactions_as_configured_reach_the_chat(tmp_path: Path) -> None:
    """``telegram.reactions = true`` reaches the chat senders (the thread decides when to
    react; here the outbox is driven directly)."""
    telegram = BotAPISimulator(enforce_limits=True)
    async with running_gateway(tmp_path, telegram, bot={"reactions": True}) as run:
        key = ThreadKey(DM)
        run.gateway.outbox.react(key, 4242, "👀")
        await wait_until(lambda: telegram.reactions.shown(DM, 4242) == ["👀"])
        run.gateway.outbox.react(key, 4242, None)
        await wait_until(lambda: telegram.reactions.shown(DM, 4242) == [])


async def test_reactions_are_off_by_default(tmp_path: Path) -> None:
    telegram = BotAPISimulator(enforce_limits=True)
    async with running_gateway(tmp_path, telegram) as run:
        run.gateway.outbox.react(ThreadKey(DM), 4243, "👀")
        asked = run.telegram.say("hello", chat_id=DM, forum=False)
        await wait_until(lambda: run.outcome(asked) == "answered")
        assert telegram.reactions.requests == 0


async def test_a_streaming_answer_shows_the_stop_button_until_it_is_complete(
    tmp_path: Path,
) -> None:
    telegram = BotAPISimulator(enforce_limits=True)
    llm = LLMSimulator(default=scripted)
    async with running_gateway(tmp_path, telegram, llm) as run:
        asked = run.telegram.say("words 60 delay 0.05", chat_id=FORUM, topic=4)
        await wait_until(lambda: any(m.buttons() for m in answer_messages(run, FORUM, 4)))
        [message] = answer_messages(run, FORUM, 4)
        [button] = message.buttons()
        assert str(button["callback_data"]).startswith("stop:")
        await wait_until(lambda: run.outcome(asked) == "answered", timeout=20)
        [message] = answer_messages(run, FORUM, 4)
        assert message.text == words(60)
        assert message.reply_markup is None
        assert telegram.violations == 0


async def test_a_private_chat_with_drafts_gets_drafts_then_one_message(tmp_path: Path) -> None:
    telegram = BotAPISimulator(enforce_limits=True)
    llm = LLMSimulator(default=scripted)
    async with running_gateway(tmp_path, telegram, llm, bot={"streaming": "draft"}) as run:
        asked = run.telegram.say("words 50 delay 0.05", chat_id=DM, forum=False)
        await wait_until(lambda: run.outcome(asked) == "answered", timeout=20)
        [message] = answer_messages(run, DM, None)
        assert message.text == words(50)
        assert message.edits == 0
        assert message.keyboards == [None]
        drafts = telegram.drafts.texts(DM)
        assert len(drafts) >= 2
        assert all(words(50).startswith(d) for d in drafts)
        assert telegram.violations == 0


async def test_a_refused_draft_falls_back_to_edits(tmp_path: Path) -> None:
    telegram = BotAPISimulator(enforce_limits=True)
    telegram.drafts.reject = True
    llm = LLMSimulator(default=scripted)
    async with running_gateway(tmp_path, telegram, llm, bot={"streaming": "draft"}) as run:
        asked = run.telegram.say("words 40 delay 0.05", chat_id=DM, forum=False)
        await wait_until(lambda: run.outcome(asked) == "answered", timeout=20)
        [message] = answer_messages(run, DM, None)
        assert message.text == words(40)
        assert message.edits >= 1
        assert telegram.drafts.requests == 1


async def test_pressing_the_stop_button_a_streaming_answer_shows_stops_that_run_only(
    tmp_path: Path,
) -> None:
    """The whole chain: the button the sender put under the answer, the press the intake
    handles, the thread's ``StopRun``. The run stops, its answer is shown cut off and loses
    its button, the press is answered once, the queued message is answered next; pressing the
    same button again stops nothing (that run has ended)."""
    telegram = BotAPISimulator(enforce_limits=True)
    llm = LLMSimulator(default=scripted)
    async with running_gateway(tmp_path, telegram, llm, bot={"reactions": True}) as run:
        first = run.telegram.say("words 200 delay 0.1 tag long", chat_id=FORUM, topic=5)
        await wait_until(lambda: any(m.buttons() for m in answer_messages(run, FORUM, 5)))
        queued = run.telegram.say("words 5 tag next", chat_id=FORUM, topic=5)
        await wait_until(lambda: telegram.reactions.shown(FORUM, queued) == ["👀"])
        [streaming] = answer_messages(run, FORUM, 5)
        [button] = streaming.buttons()
        press = run.telegram.press(FORUM, streaming.message_id, str(button["callback_data"]), 42)
        await wait_until(lambda: bool(telegram.answers_to(press)))
        assert [a.text for a in telegram.answers_to(press)] == [callbacks.STOPPED]
        await wait_until(lambda: run.outcome(first) == "stopped")
        await wait_until(lambda: run.outcome(queued) == "answered", timeout=20)
        stopped = next(m for m in run.bot_messages(FORUM, 5) if "long" in m.text)
        assert stopped.text.endswith("[answer cut off]")
        assert stopped.reply_markup is None
        assert any(words(5, "next") in m.text for m in run.bot_messages(FORUM, 5))
        await wait_until(lambda: telegram.reactions.shown(FORUM, queued) == [])
        assert telegram.reactions.history(FORUM, queued) == [["👀"], []]
        again = run.telegram.press(FORUM, streaming.message_id, str(button["callback_data"]), 42)
        await wait_until(lambda: bool(telegram.answers_to(again)))
        assert [a.text for a in telegram.answers_to(again)] == [callbacks.FINISHED]
        assert telegram.violations == 0


async def test_a_draft_the_user_stops_ends_its_run_and_the_cut_off_text_is_sent(
    tmp_path: Path,
) -> None:
    """Drafts (the sender), ``stopped_message_generation`` (the intake) and ``StopRun`` (the
    thread) together: the user's stop ends the run, and what was written is sent as a message
    marked cut off."""
    telegram = BotAPISimulator(enforce_limits=True)
    llm = LLMSimulator(default=scripted)
    async with running_gateway(tmp_path, telegram, llm, bot={"streaming": "draft"}) as run:
        asked = run.telegram.say("words 200 delay 0.1", chat_id=DM, forum=False)
        await wait_until(lambda: len(telegram.drafts.texts(DM)) >= 2, timeout=20)
        run.telegram.stop_generation(DM, 1)  # the first run's draft
        await wait_until(lambda: run.outcome(asked) == "stopped", timeout=20)
        await wait_until(lambda: bool(answer_messages(run, DM, None)))
        [message] = answer_messages(run, DM, None)
        assert message.text.endswith("[answer cut off]")
        assert message.edits == 0
        assert telegram.violations == 0
