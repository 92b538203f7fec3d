"""Streamed answers under Telegram's real pacing, against the Bot API simulator over HTTP.

The simulator enforces Telegram's limits here (``enforce_limits``: one request a second per
chat, 20 a minute per group, edits included) and answers 429 to a request over them, so these
tests also prove the gateway keeps under them.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import anyio
import pytest

from gateway.demo.botapi_sim import BotAPISimulator, SentMessage
from gateway.demo.model_sim import LLMSimulator, Reply, default_answer
from tests.gateway.harness import Running, running_gateway, wait_until

pytestmark = pytest.mark.anyio
FORUM = -1009100
DM = 5300
CUT = "[answer cut off]"


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def scripted(messages: list[dict[str, str]]) -> Reply:
    """``words N [delay D] [tag T]`` streams N words, one every D seconds."""
    last = messages[-1]["content"]
    match = re.search(r"words (\d+)(?: delay ([\d.]+))?(?: tag (\w+))?", last)
    if match is None:
        return Reply(default_answer(messages))
    count, delay, tag = int(match[1]), float(match[2] or 0.05), match[3] or "w"
    return Reply(words(count, tag), chunk_delay=delay)


def answer_messages(run: Running, chat_id: int, topic: int | None) -> list[SentMessage]:
    """The bot's messages in a thread that hold words of a scripted answer."""
    return [m for m in run.bot_messages(chat_id, topic) if re.search(r"\b[a-z]+\d+\b", m.text)]


async def test_eight_topics_answering_at_once_each_get_one_whole_answer_soon(
    tmp_path: Path,
) -> None:
    """Acceptance: 8 topics of one forum each stream a 60-word answer at once, at default
    pacing. Every answer arrives complete, in one message each, none cut off, within 20 s
    (the stream used to add about one word per edit: minutes)."""
    telegram = BotAPISimulator(enforce_limits=True)
    async with running_gateway(tmp_path, telegram, LLMSimulator(default=scripted)) as run:
        topics = range(2, 10)
        started = time.monotonic()
        tags = {t: "topic" + chr(ord("a") + t) for t in topics}
        asked = {
            t: run.telegram.say(f"words 60 tag {tags[t]}", chat_id=FORUM, topic=t) for t in topics
        }

        def complete() -> bool:
            return all(
                any(m.text.endswith(f"{tags[t]}59") for m in run.replies_to(asked[t]))
                for t in topics
            )

        await wait_until(complete, timeout=20)
        elapsed = time.monotonic() - started
        await run.quiet()
        for t in topics:
            [message] = answer_messages(run, FORUM, t)
            assert message.text == words(60, tags[t]), message.text
            assert run.outcome(asked[t]) == "answered"
        assert telegram.violations == 0, "went over Telegram's limits"
        assert elapsed < 20


async def test_waiting_for_flood_control_is_not_the_agent_stalling(tmp_path: Path) -> None:
    """With a 429 of 6 s and a stall timeout of 3 s, every answer still arrives whole: the
    stream never waits for Telegram, so the stall watchdog measures the agent alone (0 of 3
    answers arrived whole before)."""
    telegram = BotAPISimulator(flood_retry_after=6)
    llm = LLMSimulator(default=scripted)
    async with running_gateway(tmp_path, telegram, llm, stall_timeout=3) as run:
        chats = (DM, DM + 1, DM + 2)
        telegram.flood_next = 3  # the first request to each chat: "retry after 6"
        asked = {c: run.telegram.say("words 40 delay 0.1", chat_id=c, forum=False) for c in chats}
        await wait_until(lambda: all(run.outcome(asked[c]) is not None for c in chats), timeout=30)
        for chat in chats:
            assert run.outcome(asked[chat]) == "answered"
            [message] = answer_messages(run, chat, None)
            assert message.text == words(40), message.text
        assert telegram.floods >= 3


async def test_a_run_stopped_while_its_first_send_is_on_its_way_leaves_one_message(
    tmp_path: Path,
) -> None:
    """The stream owns its message: stopped while its first send is still out, the answer
    is edited to show it is cut off; no second, stray message (6-7 per 50-topic load
    before)."""
    telegram = BotAPISimulator(send_delay=1.5)
    async with running_gateway(tmp_path, telegram, LLMSimulator(default=scripted)) as run:
        asked = run.telegram.say("words 40 delay 0.05", chat_id=DM, forum=False)
        await anyio.sleep(0.7)  # the first words are on their way (the send takes 1.5 s)
        stop = run.telegram.say("/stop", chat_id=DM, forum=False)
        await wait_until(lambda: run.outcome(stop) == "answered")
        await wait_until(lambda: any(CUT in m.text for m in run.bot_messages(DM, None)))
        await anyio.sleep(2.0)  # a stray message would go out by now
        answers = answer_messages(run, DM, None)
        assert len(answers) == 1, [m.text for m in answers]
        assert answers[0].text.endswith(CUT)
        assert run.outcome(asked) == "stopped"


async def test_control_notices_go_before_other_topics_edits(tmp_path: Path) -> None:
    """A /stop's acknowledgement goes ahead of the edits of 7 other topics streaming in the
    same forum (it waited about 7 s behind them in a 50-topic forum before)."""
    telegram = BotAPISimulator(enforce_limits=True)
    async with running_gateway(tmp_path, telegram, LLMSimulator(default=scripted)) as run:
        for topic in range(2, 10):
            run.telegram.say("words 150 delay 0.05", chat_id=FORUM, topic=topic)
        await wait_until(lambda: len(run.telegram.sent) >= 8, timeout=15)  # all streaming
        said = time.monotonic()
        stop = run.telegram.say("/stop", chat_id=FORUM, topic=5)
        await wait_until(lambda: bool(run.replies_to(stop)), timeout=15)
        acknowledged = run.replies_to(stop)[0].at - said
        assert acknowledged < 2.5, f"the acknowledgement took {acknowledged:.1f}s"
        assert telegram.violations == 0


async def test_a_send_that_failed_is_not_counted_as_answered(tmp_path: Path) -> None:
    """A send whose outcome is unknown (HTTP 500) fails the answer: it is not recorded as
    answered, the user is told, and its text is not sent again as a new message."""
    telegram = BotAPISimulator(fail_sends=1)
    async with running_gateway(tmp_path, telegram, LLMSimulator(default=scripted)) as run:
        asked = run.telegram.say("words 20 delay 0.02 tag lost", chat_id=DM, forum=False)
        await wait_until(lambda: run.outcome(asked) is not None)
        told = "could not be delivered"
        await wait_until(lambda: any(told in m.text for m in run.bot_messages(DM, None)))
        await anyio.sleep(2.0)  # a second copy of the answer would go out by now
        assert run.outcome(asked) != "answered"
        texts = [m.text for m in run.bot_messages(DM, None)]
        assert not any("lost" in text for text in texts), texts


async def test_an_edit_that_failed_is_retried(tmp_path: Path) -> None:
    """Edits are idempotent: two that fail with HTTP 500 are tried again, and the answer
    arrives whole."""
    telegram = BotAPISimulator(fail_edits=2)
    async with running_gateway(tmp_path, telegram, LLMSimulator(default=scripted)) as run:
        asked = run.telegram.say("words 30 delay 0.1", chat_id=DM, forum=False)
        await wait_until(lambda: run.outcome(asked) is not None, timeout=30)
        assert run.outcome(asked) == "answered"
        [message] = answer_messages(run, DM, None)
        assert message.text == words(30)


async def test_answers_held_back_by_a_busy_groups_budget_are_shown_when_they_end(
    tmp_path: Path,
) -> None:
    """With about as many answers open as the group's minute allows requests, partial
    updates stop (each open answer keeps one request for its final text: here the first
    answer's first words go before the others are open, then nothing partial); each answer
    is then shown whole, in one message, as soon as it ends (the sender, waiting for nothing
    else, once missed the endings)."""
    telegram = BotAPISimulator(enforce_limits=True)
    llm = LLMSimulator(default=scripted)
    bot: dict[str, object] = {"group_sends_per_minute": 5}
    async with running_gateway(tmp_path, telegram, llm, bot=bot) as run:
        topics = range(2, 6)
        asked = {t: run.telegram.say("words 30 delay 0.05", chat_id=FORUM, topic=t) for t in topics}
        await wait_until(
            lambda: all(run.outcome(asked[t]) == "answered" for t in topics), timeout=20
        )
        edited = 0
        for t in topics:
            [message] = answer_messages(run, FORUM, t)
            assert message.text == words(30)
            edited += message.edits > 0
        assert edited <= 1, "partial updates went while the budget was kept for final texts"
        assert telegram.violations == 0
